-- Test runner for the Periodic Neovim plugin, run by test.sh as
--   nvim --headless --clean -l tests/run.lua tests/test_NAME.lua
-- A test file returns a list of { name, function }. Each case runs in order in this one Neovim
-- (cases in a file may build on each other, e.g. diagnostics before code actions). The runner
-- prints one `ok - ` or `not ok - ` line per case, read by test.sh, and exits non-zero on failure.

local test_file = assert(_G.arg[1], 'usage: nvim --headless --clean -l tests/run.lua tests/test_NAME.lua')
local tests_dir = vim.fs.dirname(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p'))
local plugin_dir = vim.fs.dirname(tests_dir)

vim.opt.runtimepath:prepend(plugin_dir)
package.path = tests_dir .. '/?.lua;' .. package.path
vim.cmd('filetype on')
vim.opt.swapfile = false
vim.opt.shortmess:append('A')
-- Notifications land in the test output instead of blocking on a prompt.
vim.notify = function(message, level)
  io.stdout:write(('  [notify %s] %s\n'):format(tostring(level or ''), message))
end

local cases = dofile(test_file)
local label = vim.fn.fnamemodify(test_file, ':t:r')
local failures = 0
for _, case in ipairs(cases) do
  local name, body = case[1], case[2]
  local ok, err = xpcall(body, debug.traceback)
  if ok then
    io.stdout:write(('ok - %s: %s\n'):format(label, name))
  else
    failures = failures + 1
    io.stdout:write(('not ok - %s: %s\n%s\n'):format(label, name, tostring(err)))
  end
end

-- Stop servers so they do not outlive the editor.
for _, client in ipairs(vim.lsp.get_clients()) do
  client:stop(true)
end
vim.wait(2000, function()
  return #vim.lsp.get_clients() == 0
end, 50)
io.stdout:flush()
os.exit(failures == 0 and 0 or 1)

-- Shared helpers for the plugin tests: a fresh copy of the fixture workspace, setup against the
-- real `periodic` binary ($PERIODIC_BIN), waiting on asynchronous results, assertions.

local H = {}

H.tests_dir = vim.fs.dirname(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p'))

function H.bin()
  local bin = os.getenv('PERIODIC_BIN')
  assert(bin and bin ~= '', 'PERIODIC_BIN is not set (test.sh sets it)')
  return bin
end

--- Copies tests/fixtures/NAME to a new temporary directory and returns its absolute path, so the
--- index the server or scan writes never lands in the repository.
function H.workspace(name)
  local target = vim.fn.tempname() .. '-ws'
  local result = vim.system({ 'cp', '-R', vim.fs.joinpath(H.tests_dir, 'fixtures', name or 'dup'), target }):wait()
  assert(result.code == 0, 'copying the fixture failed: ' .. (result.stderr or ''))
  return vim.fn.resolve(target)
end

function H.setup(extra)
  local options = vim.tbl_deep_extend('force', { binary = H.bin(), settings = { debounceMs = 0 } }, extra or {})
  require('periodic').setup(options)
end

function H.wait(timeout_ms, condition, message)
  local ok = vim.wait(timeout_ms, condition, 50)
  if not ok then
    error(message or ('timed out after %d ms'):format(timeout_ms), 2)
  end
end

--- Waits for a `User PATTERN` autocmd fired by the plugin and returns its data.
function H.wait_user_event(pattern, timeout_ms, trigger)
  local fired, data = false, nil
  vim.api.nvim_create_autocmd('User', {
    pattern = pattern,
    once = true,
    callback = function(event)
      fired, data = true, event.data
    end,
  })
  trigger()
  H.wait(timeout_ms, function()
    return fired
  end, 'no User ' .. pattern .. ' event within ' .. timeout_ms .. ' ms')
  return data
end

function H.eq(expected, actual, message)
  if not vim.deep_equal(expected, actual) then
    error(('%s\nexpected: %s\n  actual: %s'):format(message or 'values differ', vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.truthy(value, message)
  if not value then
    error(message or 'expected a true value', 2)
  end
  return value
end

--- Opens a file and waits until the Periodic client is attached and initialised.
function H.open_and_attach(path, timeout_ms)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  H.wait(timeout_ms or 20000, function()
    client = require('periodic').client(bufnr)
    return client ~= nil and client.initialized == true
  end, 'the periodic client did not attach to ' .. path .. ' (does `periodic lsp` exist?)')
  return bufnr, client
end

--- Lines of the quickfix list as { file, lnum, text } with paths relative to `root`.
function H.quickfix(root)
  local entries = {}
  for _, item in ipairs(vim.fn.getqflist()) do
    local name = vim.api.nvim_buf_get_name(item.bufnr)
    local relative = vim.fs.relpath and vim.fs.relpath(root, name) or name:sub(#root + 2)
    table.insert(entries, { file = relative, lnum = item.lnum, text = item.text })
  end
  return entries
end

function H.find_line(bufnr, pattern)
  for index, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:find(pattern) then
      return index
    end
  end
  return nil
end

return H

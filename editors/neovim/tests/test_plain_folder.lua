-- A first start as a new user makes it: a plain folder (no .git, no .periodic.toml, no
-- .periodic/), `require('periodic').setup({})` and nothing else, `periodic` found on $PATH, then
-- the two copies of the `dup` fixture opened from there. The folder of the file becomes the root
-- (and :checkhealth says why), diagnostics carry the other copy as related information, hover
-- and :PeriodicSimilar answer, and no message at WARN or above reaches vim.notify from start to
-- exit (the server's window/showMessage lands there too).

local H = require('helpers')

local warnings = {}
local print_notify = vim.notify
vim.notify = function(message, level, opts)
  if (level or vim.log.levels.INFO) >= vim.log.levels.WARN then
    table.insert(warnings, message)
  end
  return print_notify(message, level, opts)
end

-- The fixture's files, flat in a fresh folder without the fixture's root marker.
local root = vim.fn.resolve(vim.fn.tempname() .. '-plain')
vim.fn.mkdir(root, 'p')
for _, name in ipairs({ 'orders.py', 'invoices.py' }) do
  local copied = vim.system({ 'cp', vim.fs.joinpath(H.tests_dir, 'fixtures', 'dup', 'pkg', name), root }):wait()
  assert(copied.code == 0, 'copying the fixture failed: ' .. (copied.stderr or ''))
end
local orders = root .. '/orders.py'
local invoices_uri = vim.uri_from_fname(root .. '/invoices.py')
local bufnr, client

local function attached()
  return H.truthy(client and bufnr, 'the server is not attached (see the first case)')
end

local function diagnostic_on_order_total()
  for _, diagnostic in ipairs(vim.diagnostic.get(bufnr)) do
    if diagnostic.source == 'periodic' and diagnostic.lnum >= 3 and diagnostic.lnum <= 13 then
      return diagnostic
    end
  end
  return nil
end

return {
  { 'the folder has no root marker above it', function()
    local marker = vim.fs.find({ '.git', '.periodic.toml', '.periodic' }, { path = root, upward = true })[1]
    H.eq(nil, marker, 'the test folder must be plain')
  end },

  { "setup({}) with periodic on $PATH attaches with the file's folder as root", function()
    vim.env.PATH = vim.fs.dirname(H.bin()) .. ':' .. vim.env.PATH
    vim.cmd.cd(vim.fn.fnameescape(root))
    require('periodic').setup({})
    bufnr, client = H.open_and_attach(orders, 30000)
    H.eq(root, client.root_dir)
  end },

  { 'a diagnostic lists the other copy as related information', function()
    attached()
    H.wait(30000, function()
      return diagnostic_on_order_total() ~= nil
    end, 'no periodic diagnostic on order_total; got ' .. vim.inspect(vim.diagnostic.get(bufnr)))
    local lsp_diagnostic = diagnostic_on_order_total().user_data.lsp
    local uris = vim.tbl_map(function(information)
      return information.location.uri
    end, lsp_diagnostic.relatedInformation or {})
    H.truthy(vim.tbl_contains(uris, invoices_uri), 'relatedInformation: ' .. vim.inspect(lsp_diagnostic.relatedInformation))
  end },

  { 'hover names the other copy', function()
    attached()
    local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) }, position = { line = 3, character = 6 } }
    local response = client:request_sync('textDocument/hover', params, 10000, bufnr)
    H.truthy(response and not response.err and response.result, 'hover: ' .. vim.inspect(response))
    H.truthy(vim.inspect(response.result.contents):find('invoice_amount', 1, true), vim.inspect(response.result))
  end },

  { ':PeriodicSimilar fills the quickfix list', function()
    attached()
    vim.api.nvim_win_set_cursor(0, { 7, 8 })
    local data = H.wait_user_event('PeriodicSimilarDone', 20000, function()
      vim.cmd('PeriodicSimilar')
    end)
    H.truthy(data and data.error == nil, 'periodic/similar failed: ' .. vim.inspect(data))
    local entries = H.quickfix(root)
    H.truthy(vim.tbl_contains(vim.tbl_map(function(entry)
      return entry.file .. ':' .. entry.lnum
    end, entries), 'invoices.py:6'), 'invoices.py:6 missing from ' .. vim.inspect(entries))
    vim.cmd('cclose')
  end },

  { ':checkhealth periodic says which root is used and why', function()
    attached()
    vim.cmd('silent checkhealth periodic')
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    H.truthy(text:find('root ' .. vim.pesc(root) .. ': no root marker', 1, false), 'no reason for the root:\n' .. text)
    H.truthy(text:find('its folder', 1, true), text)
    vim.cmd('bwipeout')
  end },

  { 'no warning was shown from start to exit', function()
    attached()
    client:stop()
    H.wait(10000, function()
      return #vim.lsp.get_clients() == 0
    end, 'the server did not stop')
    H.eq({}, warnings, 'messages at WARN or above')
  end },
}

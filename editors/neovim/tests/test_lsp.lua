-- The plugin against the real language server (`periodic lsp`): attach with the fixture as root,
-- diagnostics with related locations, hover with its diff, the ignore code action editing the buffer,
-- the go-to code action opening the other copy, :checkhealth with the running client,
-- :PeriodicSimilar filling the quickfix list. The fixture has one duplicated function:
-- pkg/orders.py order_total (lines 4-14) and pkg/invoices.py invoice_amount (lines 6-16), a
-- Type-2 clone (identifiers renamed).

local H = require('helpers')

local root = H.workspace()
local orders = root .. '/pkg/orders.py'
local invoices_uri = vim.uri_from_fname(root .. '/pkg/invoices.py')
local bufnr, client

local function periodic_diagnostics()
  local found = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(bufnr)) do
    if diagnostic.source == 'periodic' then
      table.insert(found, diagnostic)
    end
  end
  return found
end

--- The diagnostic on order_total (0-based line 3 is `def order_total`).
local function order_total_diagnostic()
  for _, diagnostic in ipairs(periodic_diagnostics()) do
    if diagnostic.lnum >= 3 and diagnostic.lnum <= 13 then
      return diagnostic
    end
  end
  return nil
end

--- Later cases need the attached client; without it they fail at once instead of timing out.
local function attached()
  return H.truthy(client and bufnr, 'the server is not attached (see the first case)')
end

return {
  { 'the server attaches with the fixture folder as root', function()
    H.setup()
    bufnr, client = H.open_and_attach(orders, 30000)
    H.eq(root, client.root_dir)
  end },

  { 'a diagnostic on the duplicated function lists the other copy as related information', function()
    attached()
    H.wait(30000, function()
      return order_total_diagnostic() ~= nil
    end, 'no periodic diagnostic on order_total; got ' .. vim.inspect(periodic_diagnostics()))
    local diagnostic = order_total_diagnostic()
    local lsp_diagnostic = diagnostic.user_data and diagnostic.user_data.lsp or {}
    local related = lsp_diagnostic.relatedInformation or {}
    local other_copy
    for _, information in ipairs(related) do
      if information.location.uri == invoices_uri then
        other_copy = information.location
      end
    end
    H.truthy(other_copy, 'relatedInformation does not point at pkg/invoices.py: ' .. vim.inspect(related))
    -- invoice_amount spans 0-based lines 5..15.
    H.truthy(other_copy.range.start.line >= 5 and other_copy.range.start.line <= 6,
      'related copy starts at line ' .. other_copy.range.start.line)
    H.truthy(other_copy.range['end'].line >= 14, 'related copy ends at line ' .. other_copy.range['end'].line)
  end },

  { 'hover on the function names the other copy', function()
    attached()
    local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) }, position = { line = 3, character = 6 } }
    local response = client:request_sync('textDocument/hover', params, 10000, bufnr)
    H.truthy(response and not response.err, 'hover failed: ' .. vim.inspect(response))
    local result = H.truthy(response.result, 'hover returned nothing')
    local contents = result.contents
    local text = type(contents) == 'string' and contents or contents.value
      or table.concat(vim.tbl_map(function(part)
        return type(part) == 'string' and part or part.value
      end, contents), '\n')
    H.truthy(text:find('invoices.py', 1, true), 'hover does not mention invoices.py:\n' .. text)
    H.truthy(text:find('**Pattern', 1, true) and text:find('P%-%x+'), 'hover does not name the pattern:\n' .. text)
    H.truthy(text:find('`invoice_amount`', 1, true), 'hover does not name the other function:\n' .. text)
    -- The diff of the closest copy: a line of ours (`-`) next to the renamed line there (`+`).
    H.truthy(text:find('```diff', 1, true), 'hover has no diff:\n' .. text)
    H.truthy(text:find('\n%-%s+total = 0') and text:find('\n%+%s+amount = 0'), 'the diff does not pair the renamed lines:\n' .. text)
  end },

  { 'the ignore code action inserts a periodic-ignore comment', function()
    attached()
    local diagnostic = H.truthy(order_total_diagnostic(), 'diagnostic vanished')
    local lsp_diagnostic = diagnostic.user_data.lsp
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(bufnr) },
      range = lsp_diagnostic.range,
      context = { diagnostics = { lsp_diagnostic }, triggerKind = 1 },
    }
    local response = client:request_sync('textDocument/codeAction', params, 10000, bufnr)
    H.truthy(response and not response.err, 'codeAction failed: ' .. vim.inspect(response))
    local ignore
    for _, action in ipairs(response.result or {}) do
      if action.title and action.title:lower():find('ignore') then
        ignore = action
      end
    end
    H.truthy(ignore, 'no ignore action among ' .. vim.inspect(vim.tbl_map(function(action)
      return action.title
    end, response.result or {})))
    if not ignore.edit and ignore.data then
      local resolved = client:request_sync('codeAction/resolve', ignore, 10000, bufnr)
      ignore = H.truthy(resolved and resolved.result, 'codeAction/resolve failed: ' .. vim.inspect(resolved))
    end
    H.truthy(ignore.edit, 'the ignore action carries no WorkspaceEdit: ' .. vim.inspect(ignore))
    vim.lsp.util.apply_workspace_edit(ignore.edit, client.offset_encoding)
    local comment_line = H.truthy(H.find_line(bufnr, 'periodic%-ignore'), 'no periodic-ignore line in the buffer')
    local def_line = H.truthy(H.find_line(bufnr, '^def order_total'), 'def order_total disappeared')
    H.truthy(comment_line < def_line and def_line - comment_line <= 2,
      ('periodic-ignore on line %d, def on line %d'):format(comment_line, def_line))
    H.truthy(vim.api.nvim_buf_get_lines(bufnr, comment_line - 1, comment_line, false)[1]:find('^%s*#'),
      'the comment uses Python comment syntax')
    -- Leave the buffer as it was for the next case.
    vim.cmd('silent undo')
    H.eq(nil, H.find_line(bufnr, 'periodic%-ignore'))
  end },

  { 'the go-to code action opens the most similar copy (server command, window/showDocument)', function()
    attached()
    vim.api.nvim_win_set_cursor(0, { 4, 4 })
    vim.lsp.buf.code_action({
      apply = true,
      filter = function(action)
        return action.title:find('^Go to the most similar copy') ~= nil
      end,
    })
    local invoices = vim.uri_to_fname(invoices_uri)
    H.wait(10000, function()
      return vim.api.nvim_buf_get_name(0) == invoices
    end, 'the other copy was not opened; current buffer: ' .. vim.api.nvim_buf_get_name(0))
    H.eq(6, vim.api.nvim_win_get_cursor(0)[1], 'the cursor is on the first line of invoice_amount')
    vim.api.nvim_set_current_buf(bufnr)
  end },

  { ':PeriodicSimilar puts the other copy into the quickfix list', function()
    attached()
    vim.api.nvim_win_set_cursor(0, { 7, 8 })
    local data = H.wait_user_event('PeriodicSimilarDone', 20000, function()
      vim.cmd('PeriodicSimilar')
    end)
    H.truthy(data and data.error == nil, 'periodic/similar failed: ' .. vim.inspect(data))
    local entries = H.quickfix(root)
    H.truthy(#entries >= 1, 'the quickfix list is empty')
    local hit
    for _, entry in ipairs(entries) do
      if entry.file == 'pkg/invoices.py' and entry.lnum == 6 then
        hit = entry
      end
    end
    H.truthy(hit, 'pkg/invoices.py:6 missing from ' .. vim.inspect(entries))
    H.truthy(hit.text:find('invoice_amount', 1, true) and hit.text:find('%d+%% T%d P%-'), 'entry text: ' .. hit.text)
    for _, entry in ipairs(entries) do
      H.truthy(not (entry.file == 'pkg/orders.py' and entry.lnum == 4), 'the unit itself is listed as similar to itself')
    end
  end },

  { ':PeriodicPatterns! puts every copy of every pattern into the quickfix list', function()
    attached()
    local data = H.wait_user_event('PeriodicPatternsDone', 20000, function()
      vim.cmd('PeriodicPatterns!')
    end)
    H.truthy(data and data.error == nil and data.count >= 1, 'periodic/patterns: ' .. vim.inspect(data))
    local seen = {}
    for _, entry in ipairs(H.quickfix(root)) do
      seen[entry.file .. ':' .. entry.lnum] = true
    end
    H.truthy(seen['pkg/orders.py:4'] and seen['pkg/invoices.py:6'], 'copies missing: ' .. vim.inspect(H.quickfix(root)))
  end },

  { ':PeriodicName names the pattern at the cursor and the pattern table shows the name', function()
    attached()
    vim.cmd('cclose')
    vim.api.nvim_set_current_buf(bufnr)
    vim.api.nvim_win_set_cursor(0, { 7, 8 })
    local data = H.wait_user_event('PeriodicNameDone', 20000, function()
      vim.cmd('PeriodicName order-totals')
    end)
    H.truthy(data and data.error == nil, 'naming failed: ' .. vim.inspect(data))
    H.truthy(data.pattern:match('^P%-'), 'pattern id: ' .. tostring(data.pattern))
    local response = client:request_sync('periodic/patterns', vim.empty_dict(), 10000, bufnr)
    H.truthy(response and not response.err, 'periodic/patterns failed: ' .. vim.inspect(response))
    local named
    for _, pattern in ipairs(response.result or {}) do
      if pattern.id == data.pattern then
        named = pattern
      end
    end
    H.truthy(named, 'pattern ' .. data.pattern .. ' not in the table')
    H.eq('order-totals', named.name)
  end },

  { ':checkhealth periodic lists the running client with the fixture as root', function()
    attached()
    vim.cmd('silent checkhealth periodic')
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    H.truthy(not text:find('ERROR'), 'checkhealth reported an error:\n' .. text)
    H.truthy(text:find(('OK client %d running, root '):format(client.id) .. vim.pesc(root), 1, false),
      'no line for the running client:\n' .. text)
    vim.cmd('bwipeout')
  end },

  { 'editing the other copy updates the diagnostics of this buffer', function()
    attached()
    H.truthy(order_total_diagnostic(), 'no diagnostic on order_total to begin with')
    vim.cmd.edit(vim.fn.fnameescape(vim.uri_to_fname(invoices_uri)))
    local invoices_buf = vim.api.nvim_get_current_buf()
    H.wait(20000, function()
      return require('periodic').client(invoices_buf) ~= nil
    end, 'the client did not attach to invoices.py')
    -- invoice_amount's body (lines 7-16) becomes one line: no longer a copy of order_total.
    vim.api.nvim_buf_set_lines(invoices_buf, 6, 16, false, { '    return 0' })
    H.wait(20000, function()
      return order_total_diagnostic() == nil
    end, 'orders.py still shows a diagnostic after its copy was removed: ' .. vim.inspect(periodic_diagnostics()))
    vim.cmd('silent undo')
    H.wait(20000, function()
      return order_total_diagnostic() ~= nil
    end, 'orders.py shows no diagnostic after the copy came back')
  end },
}

-- Commands that need only the `periodic` binary (no language server): :PeriodicScan into the
-- quickfix list, then :checkhealth periodic with the index the scan wrote.

local H = require('helpers')

local root = H.workspace()

return {
  { ':PeriodicScan fills the quickfix list with both copies', function()
    H.setup()
    local data = H.wait_user_event('PeriodicScanDone', 60000, function()
      vim.cmd('PeriodicScan ' .. vim.fn.fnameescape(root))
    end)
    H.truthy(data and data.error == nil, 'scan failed: ' .. vim.inspect(data))
    local entries = H.quickfix(root)
    local seen = {}
    for _, entry in ipairs(entries) do
      seen[entry.file .. ':' .. entry.lnum] = entry.text
    end
    H.truthy(seen['pkg/orders.py:4'], 'order_total (pkg/orders.py:4) missing from ' .. vim.inspect(entries))
    H.truthy(seen['pkg/invoices.py:6'], 'invoice_amount (pkg/invoices.py:6) missing from ' .. vim.inspect(entries))
    H.truthy(seen['pkg/orders.py:4']:find('%[P%-%x+ T%d'), 'entry text names the pattern: ' .. seen['pkg/orders.py:4'])
  end },

  { ':checkhealth periodic passes and reports binary, version and index', function()
    vim.cmd.cd(vim.fn.fnameescape(root))
    vim.cmd('silent checkhealth periodic')
    local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    local text = table.concat(lines, '\n')
    H.truthy(not text:find('ERROR'), 'checkhealth reported an error:\n' .. text)
    H.truthy(text:find('OK binary: ' .. vim.pesc(H.bin()), 1, false) or text:find('OK binary: ', 1, true), 'no binary line:\n' .. text)
    H.truthy(text:find('OK version: periodic'), 'no version line:\n' .. text)
    H.truthy(text:find('OK index ' .. vim.pesc(root .. '/.periodic/index.db')), 'no index line:\n' .. text)
  end },
}

-- Plugin configuration without a server: settings → server options, setup() registering the LSP
-- config and the user commands, and scan report → quickfix items.

local H = require('helpers')
local config = require('periodic.config')
local scan = require('periodic.scan')

return {
  { 'empty settings send an empty options object (server defaults apply)', function()
    local options, problems = config.server_options({})
    H.eq({}, options)
    H.eq({}, problems)
    -- An object on the wire, not `[]` (which the server would have to guess about).
    H.eq('{}', vim.json.encode(options))
    H.eq('{"periodic":{}}', vim.json.encode(require('periodic').client_config(config.merge({})).settings))
  end },

  { 'settings map to the initializationOptions shape', function()
    local options, problems = config.server_options({
      minLines = 8, minTokens = 40, similarity = 0.8, debounceMs = 0,
      diagnostics = { severity = 'warning', kinds = { T1 = true, T2 = false } },
      edge = { url = ' https://edge.test ', share = 'fingerprints', token = 'secret' },
    })
    H.eq({}, problems)
    H.eq({
      minLines = 8, minTokens = 40, similarity = 0.8, debounceMs = 0,
      diagnostics = { severity = 'warning', kinds = { T1 = true, T2 = false } },
      edge = { url = 'https://edge.test', share = 'fingerprints', token = 'secret' },
    }, options)
  end },

  { 'invalid settings are dropped, each with a message', function()
    local options, problems = config.server_options({
      minLines = 0, minTokens = 2.5, similarity = 0, debounceMs = -5,
      diagnostics = { severity = 'loud', kinds = { T3 = 'no' } },
      edge = { url = 'ftp://x', share = 'all' },
    })
    H.eq({}, options)
    H.eq(8, #problems, vim.inspect(problems))
    for _, expected in ipairs({ 'minLines', 'minTokens', 'similarity', 'debounceMs', 'severity', 'kinds.T3', 'edge.url', 'edge.share' }) do
      local found = false
      for _, message in ipairs(problems) do
        found = found or message:find(expected, 1, true) ~= nil
      end
      H.truthy(found, 'no problem reported for ' .. expected)
    end
  end },

  { 'setup() registers the LSP config, client commands and user commands', function()
    H.setup({ settings = { minLines = 9 }, log_level = 'debug' })
    local resolved = vim.lsp.config.periodic
    H.eq({ H.bin(), 'lsp' }, resolved.cmd)
    H.eq({ '.periodic.toml', '.git' }, resolved.root_markers)
    H.eq({ minLines = 9, debounceMs = 0 }, resolved.init_options)
    H.eq({ periodic = { minLines = 9, debounceMs = 0 } }, resolved.settings)
    H.eq({ PERIODIC_LOG = 'debug' }, resolved.cmd_env)
    H.truthy(vim.tbl_contains(resolved.filetypes, 'python'))
    H.truthy(vim.lsp.commands['periodic.showReferences'], 'client command periodic.showReferences')
    local commands = vim.api.nvim_get_commands({})
    for _, name in ipairs({ 'PeriodicScan', 'PeriodicPatterns', 'PeriodicSimilar', 'PeriodicName' }) do
      H.truthy(commands[name], ':' .. name .. ' is not defined')
    end
  end },

  { 'the code lens command puts its locations into the quickfix list', function()
    local root = H.workspace()
    local target = vim.uri_from_fname(root .. '/pkg/invoices.py')
    vim.lsp.commands['periodic.showReferences']({
      title = '1 similar',
      command = 'periodic.showReferences',
      arguments = {
        vim.uri_from_fname(root .. '/pkg/orders.py'),
        { line = 3, character = 0 },
        { { uri = target, range = { start = { line = 5, character = 0 }, ['end'] = { line = 15, character = 0 } } } },
      },
    }, { client_id = -1 })
    local entries = H.quickfix(root)
    H.eq(1, #entries)
    H.eq('pkg/invoices.py', entries[1].file)
    H.eq(6, entries[1].lnum)
  end },

  { 'scan report members become quickfix items with 1-based lines', function()
    local items = scan.report_items({
      patterns = {
        { id = 'P-1a2b3c4d', name = 'total-loop', kind = 'T2', similarity = 0.93, members = {
          { path = 'pkg/orders.py', start_line = 4, end_line = 14, name = 'order_total' },
          { path = 'pkg/invoices.py', start_line = 6, end_line = 16, name = '' },
        } },
      },
    }, '/w')
    H.eq(2, #items)
    H.eq('/w/pkg/orders.py', items[1].filename)
    H.eq(4, items[1].lnum)
    H.eq(14, items[1].end_lnum)
    H.eq('total-loop [P-1a2b3c4d T2 93%] copy 1/2 order_total', items[1].text)
    H.eq('total-loop [P-1a2b3c4d T2 93%] copy 2/2', items[2].text)
  end },

  { 'the root is the nearest folder with .periodic.toml or .git, for files and for the current directory', function()
    local root = H.workspace()
    vim.fn.mkdir(root .. '/sub/.git', 'p')
    vim.fn.writefile({ 'x = 1' }, root .. '/sub/m.py')
    vim.cmd.edit(vim.fn.fnameescape(root .. '/pkg/orders.py'))
    H.eq(root, require('periodic').root())
    vim.cmd.edit(vim.fn.fnameescape(root .. '/sub/m.py'))
    H.eq(root .. '/sub', require('periodic').root())
    vim.cmd('enew')
    vim.cmd.cd(vim.fn.fnameescape(root .. '/pkg'))
    H.eq(root, require('periodic').root())
  end },

  { 'the help file builds tags and :help finds every command', function()
    local copy = vim.fn.tempname() .. '-doc'
    vim.fn.mkdir(copy, 'p')
    local source = vim.fs.joinpath(vim.fs.dirname(H.tests_dir), 'doc', 'periodic.txt')
    H.eq(0, vim.fn.writefile(vim.fn.readfile(source), copy .. '/periodic.txt'))
    vim.cmd('helptags ' .. vim.fn.fnameescape(copy))
    local tags = vim.fn.readfile(copy .. '/tags')
    local names = {}
    for _, line in ipairs(tags) do
      names[line:match('^[^\t]+')] = true
    end
    for _, tag in ipairs({ 'periodic.txt', 'periodic-setup', 'periodic-settings', ':PeriodicScan', ':PeriodicPatterns',
      ':PeriodicSimilar', ':PeriodicName', 'periodic-health', 'periodic-lspconfig' }) do
      H.truthy(names[tag], 'missing help tag ' .. tag)
    end
  end },
}

-- Periodic for Neovim: starts `periodic lsp` for the supported filetypes, passes the settings, and
-- adds the user commands :PeriodicScan, :PeriodicPatterns, :PeriodicSimilar and :PeriodicName.
-- No analysis happens here; every answer comes from the server or from `periodic scan`.

local config = require('periodic.config')
local scan = require('periodic.scan')

local M = {}

M.name = 'periodic'
--- The merged options of the last `setup()` call; nil before it.
M.options = nil

-- Client methods are called with `:` from Neovim 0.11 on; 0.10 only has the `.` form.
local function request(client, method, params, handler, bufnr)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function notify_server(client, method, params)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function notify(message, level)
  vim.notify('Periodic: ' .. message, level or vim.log.levels.INFO)
end

--- The running Periodic client for a buffer (default: current), or nil.
function M.client(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local clients = vim.lsp.get_clients({ bufnr = bufnr, name = M.name })
  return clients[1]
end

local function any_client()
  return M.client() or vim.lsp.get_clients({ name = M.name })[1]
end

--- Why each root in use was chosen, by root directory (shown by :checkhealth periodic).
M.root_reasons = {}

--- The root for a buffer and why: the nearest directory holding a root marker, else the file's
--- own folder (a plain folder, an unpacked tarball), else the current directory (a buffer with
--- no file). Returns (root, reason).
function M.find_root(bufnr, markers)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  markers = markers or (M.options or config.defaults).root_markers
  local name = vim.api.nvim_buf_get_name(bufnr)
  -- Only a file buffer has a useful directory; `health://`, quickfix and scratch buffers do not.
  local is_file = vim.bo[bufnr].buftype == '' and name ~= '' and not name:match('^%a[%w+.-]*://')
  local start = is_file and vim.fs.dirname(vim.fn.fnamemodify(name, ':p')) or vim.fn.getcwd()
  local found = #markers > 0 and vim.fs.find(markers, { path = start, upward = true })[1] or nil
  if found then
    -- `:p` adds a trailing slash to directories such as `.git`; drop it before taking the parent.
    local absolute = vim.fn.fnamemodify(found, ':p'):gsub('/+$', '')
    return vim.fs.normalize(vim.fs.dirname(absolute)), 'holds ' .. vim.fs.basename(absolute)
  end
  if is_file then
    return vim.fs.normalize(start), 'no root marker (' .. table.concat(markers, ', ') .. ') above the file: its folder'
  end
  return vim.fs.normalize(vim.fn.getcwd()), 'no file and no root marker: the current directory'
end

--- The directory Periodic treats as the root for a buffer: the client's root, else the one
--- `find_root` picks.
function M.root(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if client and client.root_dir then
    return client.root_dir
  end
  return (M.find_root(bufnr))
end

--- The root for a buffer the client is about to start on, remembering why it was chosen.
local function choose_root(bufnr, markers)
  local root, reason = M.find_root(bufnr, markers)
  M.root_reasons[root] = reason
  return root
end

--- Puts LSP locations into the quickfix list, converting positions with the client's encoding.
local function locations_to_quickfix(client, locations, title)
  local encoding = client and client.offset_encoding or 'utf-16'
  local items = vim.lsp.util.locations_to_items(locations, encoding)
  vim.fn.setqflist({}, ' ', { title = title, items = items })
  return items
end

--- One quickfix item for one LSP location (line text and encoding handled by Neovim).
local function location_item(client, location)
  local encoding = client and client.offset_encoding or 'utf-16'
  return vim.lsp.util.locations_to_items({ location }, encoding)[1]
end

local function fire(pattern, data)
  vim.api.nvim_exec_autocmds('User', { pattern = pattern, modeline = false, data = data })
end

-- Client-side command used by the server's code lenses: `[uri, position, locations]`.
local function show_references(command, ctx)
  local args = command.arguments or {}
  local locations = args[3]
  if type(locations) ~= 'table' or vim.tbl_isempty(locations) then
    notify('no locations to show', vim.log.levels.WARN)
    return
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  locations_to_quickfix(client, locations, 'Periodic: similar code')
  vim.cmd('botright copen')
end

--- Asks the server which units are similar to the one at the cursor; fills the quickfix list.
function M.similar(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify('the server is not attached to this buffer', vim.log.levels.WARN)
    fire('PeriodicSimilarDone', { error = 'the server is not attached to this buffer' })
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  request(client, 'periodic/similar', params, function(err, result)
    if err then
      notify('periodic/similar failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      fire('PeriodicSimilarDone', { error = err.message })
      return
    end
    result = result or {}
    local similar = result.similar or {}
    local unit_name = (type(result.unit) == 'table' and result.unit.name) or 'the code at the cursor'
    -- One location at a time: locations_to_items sorts by file, and the server's order (most
    -- similar first) is the one worth keeping.
    local items = {}
    for _, candidate in ipairs(similar) do
      -- Copies in other repositories (from the team server) may not exist on this machine.
      if candidate.repo == nil then
        local item = location_item(client, { uri = candidate.uri, range = candidate.range })
        item.text = ('%s  %d%% %s %s'):format(
          (candidate.name ~= nil and candidate.name ~= '') and candidate.name or '(block)',
          math.floor((candidate.similarity or 0) * 100 + 0.5), candidate.kind or '', candidate.pattern or '')
        table.insert(items, item)
      end
    end
    vim.fn.setqflist({}, ' ', { title = 'Periodic: similar to ' .. unit_name, items = items })
    if #items == 0 then
      notify('nothing similar to ' .. unit_name .. ' was found')
    elseif opts.open ~= false then
      vim.cmd('botright copen')
      vim.cmd('wincmd p')
    end
    fire('PeriodicSimilarDone', { count = #items })
  end, bufnr)
end

local function pattern_label(pattern)
  return ('%s  [%s %s %d%%]  %d copies, %d lines'):format(
    pattern.name ~= '' and pattern.name or pattern.id, pattern.id, pattern.kind,
    math.floor((pattern.similarity or 0) * 100 + 0.5), pattern.memberCount or #(pattern.members or {}),
    pattern.duplicatedLines or 0)
end

local function members_to_quickfix(client, patterns, title)
  local items = {}
  for _, pattern in ipairs(patterns) do
    for _, member in ipairs(pattern.members or {}) do
      local item = location_item(client, { uri = member.uri, range = member.range })
      item.text = ('%s [%s] %s'):format(pattern.name ~= '' and pattern.name or pattern.id, pattern.id,
        (member.name ~= nil and member.name ~= '') and member.name or '(block)')
      table.insert(items, item)
    end
  end
  vim.fn.setqflist({}, ' ', { title = title, items = items })
  return items
end

--- `periodic/patterns`: with `all`, every copy of every pattern goes to the quickfix list;
--- otherwise one pattern is picked with vim.ui.select and its copies go to the quickfix list.
function M.patterns(opts)
  opts = opts or {}
  local client = any_client()
  if not client then
    notify('the server is not running', vim.log.levels.WARN)
    fire('PeriodicPatternsDone', { error = 'the server is not running' })
    return
  end
  -- An empty Lua table is encoded as `[]`; the server reads its parameters from an object.
  local params = vim.empty_dict()
  if opts.query and opts.query ~= '' then
    params.query = opts.query
  end
  request(client, 'periodic/patterns', params, function(err, patterns)
    if err then
      notify('periodic/patterns failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      fire('PeriodicPatternsDone', { error = err.message })
      return
    end
    patterns = patterns or {}
    if #patterns == 0 then
      notify('no duplicated code patterns found (yet)')
      fire('PeriodicPatternsDone', { count = 0 })
      return
    end
    if opts.all then
      members_to_quickfix(client, patterns, 'Periodic: all patterns')
      vim.cmd('botright copen')
      fire('PeriodicPatternsDone', { count = #patterns })
      return
    end
    vim.ui.select(patterns, { prompt = 'Periodic pattern', format_item = pattern_label }, function(pattern)
      if pattern then
        members_to_quickfix(client, { pattern }, 'Periodic: ' .. pattern_label(pattern))
        vim.cmd('botright copen')
        vim.cmd('cfirst')
      end
      fire('PeriodicPatternsDone', { count = #patterns })
    end)
  end)
end

local function execute_name(client, pattern_id, name)
  request(client, 'workspace/executeCommand', { command = 'periodic.namePattern', arguments = { pattern_id, name } },
    function(err)
      if err then
        notify('naming the pattern failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      else
        notify(('pattern %s is now named "%s"'):format(pattern_id, name))
      end
      fire('PeriodicNameDone', { pattern = pattern_id, name = name, error = err and err.message })
    end)
end

local function ask_name_then_execute(client, pattern_id, name)
  if name and vim.trim(name) ~= '' then
    execute_name(client, pattern_id, vim.trim(name))
    return
  end
  vim.ui.input({ prompt = ('Name for pattern %s: '):format(pattern_id) }, function(input)
    if input and vim.trim(input) ~= '' then
      execute_name(client, pattern_id, vim.trim(input))
    end
  end)
end

--- Names the pattern of the code at the cursor (or a picked one when the cursor is in no pattern).
function M.name_pattern(name)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr) or any_client()
  if not client then
    notify('the server is not running', vim.log.levels.WARN)
    return
  end
  local function pick_from_table()
    request(client, 'periodic/patterns', vim.empty_dict(), function(err, patterns)
      if err or not patterns or #patterns == 0 then
        notify('there is no pattern to name yet', vim.log.levels.WARN)
        return
      end
      vim.ui.select(patterns, { prompt = 'Pattern to name', format_item = pattern_label }, function(pattern)
        if pattern then
          ask_name_then_execute(client, pattern.id, name)
        end
      end)
    end)
  end
  if M.client(bufnr) == nil then
    pick_from_table()
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  request(client, 'periodic/similar', params, function(err, result)
    local first = not err and result and result.similar and result.similar[1]
    if first and first.pattern then
      ask_name_then_execute(client, first.pattern, name)
    else
      pick_from_table()
    end
  end, bufnr)
end

--- Runs `periodic scan` on the root (or `path`) and fills the quickfix list with every copy.
function M.scan(path)
  local options = M.options or config.defaults
  local root = (path and path ~= '') and vim.fn.fnamemodify(path, ':p'):gsub('/$', '') or M.root()
  notify('scanning ' .. root .. ' ...')
  scan.run(options.binary, root, function(err, report, items)
    if err then
      notify(err, vim.log.levels.ERROR)
      fire('PeriodicScanDone', { error = err })
      return
    end
    vim.fn.setqflist({}, ' ', { title = 'Periodic: scan of ' .. root, items = items })
    local stats = report.stats or {}
    notify(('%d patterns, %d duplicated lines (%.1f%%) in %d files'):format(
      #(report.patterns or {}), stats.duplicated_lines or 0, stats.duplication_percent or 0, stats.files or 0))
    if #items > 0 then
      vim.cmd('botright copen')
      vim.cmd('wincmd p')
    end
    fire('PeriodicScanDone', { count = #items })
  end)
end

local function create_commands()
  local command = vim.api.nvim_create_user_command
  command('PeriodicScan', function(args)
    M.scan(args.args)
  end, { nargs = '?', complete = 'dir', desc = 'Periodic: scan a folder, copies into the quickfix list' })
  command('PeriodicPatterns', function(args)
    M.patterns({ all = args.bang, query = args.args })
  end, { nargs = '?', bang = true, desc = 'Periodic: pick a pattern (! = all patterns into quickfix)' })
  command('PeriodicSimilar', function()
    M.similar()
  end, { desc = 'Periodic: similar code at the cursor into the quickfix list' })
  command('PeriodicName', function(args)
    M.name_pattern(args.args)
  end, { nargs = '?', desc = 'Periodic: name the pattern of the code at the cursor' })
end

local function server_cmd(options)
  return { options.binary, 'lsp' }
end

--- The client configuration shared by the 0.11+ path and the older fallback.
function M.client_config(options)
  local server_options, problems = config.server_options(options.settings)
  for _, message in ipairs(problems) do
    notify(message .. '; the server default is used', vim.log.levels.WARN)
  end
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  if options.capabilities then
    capabilities = vim.tbl_deep_extend('force', capabilities, options.capabilities)
  end
  return {
    cmd = server_cmd(options),
    cmd_env = options.log_level and { PERIODIC_LOG = options.log_level } or nil,
    filetypes = options.filetypes,
    -- A function rather than `root_markers`: without a marker Neovim would start the server with
    -- no root at all, and nothing would be indexed.
    root_dir = function(bufnr, on_dir)
      on_dir(choose_root(bufnr, options.root_markers))
    end,
    root_markers = options.root_markers,
    init_options = server_options,
    -- Sent as workspace/didChangeConfiguration after start; the server reads `settings.periodic`.
    settings = { periodic = server_options },
    capabilities = capabilities,
    on_attach = options.on_attach,
  }
end

-- Older Neovim (no vim.lsp.config): start the client from a FileType autocmd.
local function setup_legacy(client_config)
  local group = vim.api.nvim_create_augroup('periodic_lsp', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = client_config.filetypes,
    callback = function(event)
      vim.lsp.start(vim.tbl_extend('force', client_config, {
        name = M.name,
        root_dir = choose_root(event.buf, client_config.root_markers),
      }), { bufnr = event.buf })
    end,
  })
end

--- Sets up the plugin. Safe to call again: the last call wins.
---@param user table|nil see :help periodic-setup
function M.setup(user)
  local options = config.merge(user)
  M.options = options
  local client_config = M.client_config(options)

  vim.lsp.commands['periodic.showReferences'] = show_references
  -- Code actions may send only `[patternId]`: ask for the name, then let the server store it.
  vim.lsp.commands['periodic.namePattern'] = function(command, ctx)
    local args = command.arguments or {}
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if client and type(args[1]) == 'string' then
      ask_name_then_execute(client, args[1], args[2])
    end
  end
  -- The server may answer `periodic.showSimilar` with locations instead of opening one itself.
  vim.lsp.commands['periodic.showSimilar'] = function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if not client then
      return
    end
    request(client, 'workspace/executeCommand', { command = command.command, arguments = command.arguments },
      function(err, result)
        if err then
          notify('periodic.showSimilar failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
        elseif type(result) == 'table' and #result > 0 then
          locations_to_quickfix(client, result, 'Periodic: similar code')
          vim.cmd('botright copen')
        end
      end, ctx.bufnr)
  end
  create_commands()

  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config(M.name, client_config)
    vim.lsp.enable(M.name)
  else
    setup_legacy(client_config)
  end
end

--- Sends changed settings to running servers (`workspace/didChangeConfiguration`).
function M.update_settings(settings)
  if not M.options then
    return
  end
  M.options.settings = vim.tbl_deep_extend('force', M.options.settings or {}, settings or {})
  local server_options = config.server_options(M.options.settings)
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    client.settings = { periodic = server_options }
    notify_server(client, 'workspace/didChangeConfiguration', { settings = { periodic = server_options } })
  end
end

return M

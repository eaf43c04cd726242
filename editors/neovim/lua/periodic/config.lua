-- Configuration of the Periodic Neovim plugin: defaults, merging the user's `setup()` options,
-- and the options object the server reads (as `initializationOptions` and as `settings.periodic`
-- in `workspace/didChangeConfiguration`). Invalid values are dropped with a warning so the server
-- keeps its own default, because one bad value must not stop the server from starting.

local M = {}

M.filetypes = {
  'rust', 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
  'go', 'java', 'c', 'cpp', 'cs', 'ruby',
}

M.defaults = {
  -- The `periodic` binary; a name is looked up on $PATH.
  binary = 'periodic',
  -- Searched upwards from the buffer; the first directory holding one of them is the root.
  -- Without any, the file's own folder is the root (see :checkhealth periodic).
  root_markers = { '.periodic.toml', '.git' },
  filetypes = M.filetypes,
  -- PERIODIC_LOG of the server process (error, warn, info, debug, trace); nil keeps the default.
  log_level = nil,
  -- Server options; nil fields keep the server's defaults. See :help periodic-settings.
  settings = {
    minLines = nil,
    minTokens = nil,
    similarity = nil,
    debounceMs = nil,
    diagnostics = { severity = nil, kinds = { T1 = nil, T2 = nil, T3 = nil } },
    -- The token is best read from the environment, e.g. os.getenv('PERIODIC_EDGE_TOKEN').
    edge = { url = nil, share = nil, token = nil },
  },
  -- Called with (client, bufnr) when the server attaches to a buffer.
  on_attach = nil,
  -- Extra client capabilities merged into the defaults.
  capabilities = nil,
}

local SEVERITIES = { information = true, hint = true, warning = true, error = true, off = true }
local SHARE_LEVELS = { off = true, fingerprints = true, locations = true }

local function is_integer(value, minimum)
  return type(value) == 'number' and value == math.floor(value) and value >= minimum
end

--- Maps the `settings` table to the server's options. Returns (options, problems) where problems
--- is a list of messages for values that were dropped.
---@param settings table|nil
---@return table options
---@return string[] problems
function M.server_options(settings)
  settings = settings or {}
  -- An empty Lua table is sent as `[]`; the server reads an object, so start from a dict.
  local options, problems = vim.empty_dict(), {}
  local function problem(message)
    table.insert(problems, message)
  end

  for _, key in ipairs({ 'minLines', 'minTokens' }) do
    local value = settings[key]
    if value ~= nil then
      if is_integer(value, 1) then
        options[key] = value
      else
        problem(('settings.%s must be a whole number of at least 1'):format(key))
      end
    end
  end
  if settings.similarity ~= nil then
    local value = settings.similarity
    if type(value) == 'number' and value > 0 and value <= 1 then
      options.similarity = value
    else
      problem('settings.similarity must be greater than 0 and at most 1')
    end
  end
  if settings.debounceMs ~= nil then
    if is_integer(settings.debounceMs, 0) then
      options.debounceMs = settings.debounceMs
    else
      problem('settings.debounceMs must be a whole number of at least 0')
    end
  end

  local diagnostics_in = settings.diagnostics or {}
  local diagnostics = {}
  if diagnostics_in.severity ~= nil then
    if SEVERITIES[diagnostics_in.severity] then
      diagnostics.severity = diagnostics_in.severity
    else
      problem('settings.diagnostics.severity must be one of information, hint, warning, error, off')
    end
  end
  local kinds = {}
  for _, kind in ipairs({ 'T1', 'T2', 'T3' }) do
    local enabled = (diagnostics_in.kinds or {})[kind]
    if type(enabled) == 'boolean' then
      kinds[kind] = enabled
    elseif enabled ~= nil then
      problem(('settings.diagnostics.kinds.%s must be true or false'):format(kind))
    end
  end
  if next(kinds) then
    diagnostics.kinds = kinds
  end
  if next(diagnostics) then
    options.diagnostics = diagnostics
  end

  local edge_in = settings.edge or {}
  local edge = {}
  if type(edge_in.url) == 'string' and vim.trim(edge_in.url) ~= '' then
    local url = vim.trim(edge_in.url)
    if url:match('^https?://[^/]') then
      edge.url = url
    else
      problem('settings.edge.url must be an http:// or https:// address')
    end
  end
  if edge_in.share ~= nil then
    if SHARE_LEVELS[edge_in.share] then
      edge.share = edge_in.share
    else
      problem('settings.edge.share must be one of off, fingerprints, locations')
    end
  end
  if type(edge_in.token) == 'string' and edge_in.token ~= '' then
    edge.token = edge_in.token
  end
  if next(edge) then
    options.edge = edge
  end

  return options, problems
end

--- Merges user options over the defaults. Lists (filetypes, root_markers) are replaced, not merged.
function M.merge(user)
  local merged = vim.tbl_deep_extend('force', {}, M.defaults, user or {})
  if user and user.filetypes then
    merged.filetypes = user.filetypes
  end
  if user and user.root_markers then
    merged.root_markers = user.root_markers
  end
  return merged
end

return M

-- `:checkhealth periodic`: the Neovim version, the `periodic` binary and its version, whether
-- setup() ran, the server clients attached with their root and why it was chosen, and the state of the local index
-- (`.periodic/index.db` under the root of the current buffer).

local M = {}

local health = vim.health

local function human_size(bytes)
  if bytes >= 1024 * 1024 then
    return ('%.1f MB'):format(bytes / 1024 / 1024)
  end
  return ('%.1f KB'):format(bytes / 1024)
end

function M.check()
  local periodic = require('periodic')
  local options = periodic.options or require('periodic.config').defaults

  health.start('periodic: Neovim')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()) .. ' (vim.lsp.config / vim.lsp.enable)')
  elseif vim.fn.has('nvim-0.10') == 1 then
    health.warn('Neovim ' .. tostring(vim.version()) .. ': using the FileType autocmd fallback',
      { 'Neovim 0.11 or later is recommended; see :help periodic-lspconfig for nvim-lspconfig' })
  else
    health.error('Neovim ' .. tostring(vim.version()) .. ' is too old', { 'Periodic needs Neovim 0.10 or later' })
  end
  if periodic.options then
    health.ok("require('periodic').setup() was called")
  else
    health.warn("require('periodic').setup() was not called", { "Add require('periodic').setup({}) to your config" })
  end

  health.start('periodic: binary')
  local path = vim.fn.exepath(options.binary)
  if path == '' then
    health.error(('`%s` was not found (not executable, not on $PATH)'):format(options.binary), {
      'Install it: cargo install --locked --path lsp (from a checkout of the Periodic repository)',
      "Or point setup({ binary = '/path/to/periodic' }) at a build",
    })
  else
    health.ok('binary: ' .. path)
    local ok, result = pcall(function()
      return vim.system({ path, '--version' }, { text = true }):wait(5000)
    end)
    if ok and result.code == 0 and vim.trim(result.stdout or '') ~= '' then
      health.ok('version: ' .. vim.trim(result.stdout))
    else
      local detail = ok and vim.trim((result.stderr or '') .. ' exit ' .. tostring(result.code)) or tostring(result)
      health.error('`' .. path .. ' --version` failed: ' .. detail)
    end
  end

  health.start('periodic: language server')
  local clients = vim.lsp.get_clients({ name = periodic.name })
  if #clients == 0 then
    health.info('no Periodic client is running (it starts when a supported file is opened)')
  end
  for _, client in ipairs(clients) do
    health.ok(('client %d running, root %s, position encoding %s'):format(
      client.id, client.root_dir or '(none)', client.offset_encoding or '?'))
    local reason = client.root_dir and periodic.root_reasons[client.root_dir]
    if reason then
      health.info(('root %s: %s'):format(client.root_dir, reason))
    end
  end
  if #clients == 0 then
    local root, reason = periodic.find_root()
    health.info(('a server started now would use the root %s (%s)'):format(root, reason))
  end

  health.start('periodic: index')
  local root = periodic.root()
  local index = vim.fs.joinpath(root, '.periodic', 'index.db')
  local stat = vim.uv.fs_stat(index)
  if stat then
    health.ok(('index %s: %s, updated %s'):format(index, human_size(stat.size),
      os.date('%Y-%m-%d %H:%M:%S', stat.mtime.sec)))
  else
    health.info(('no index yet at %s: the server builds it in the background, or run :PeriodicScan'):format(index))
  end
end

return M

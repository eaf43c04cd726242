-- `:PeriodicScan`: runs `periodic scan ROOT --format json` (no server needed) and puts every copy
-- of every pattern into the quickfix list. Report paths are relative to the scan root and lines
-- are 1-based inclusive (see docs/report-format.md).

local M = {}

--- Turns a decoded JSON report into quickfix items, largest pattern first (the report's order).
---@param report table
---@param root string absolute scan root
---@return table[] items
function M.report_items(report, root)
  local items = {}
  for _, pattern in ipairs(report.patterns or {}) do
    local members = pattern.members or {}
    for index, member in ipairs(members) do
      local label = pattern.name ~= nil and pattern.name ~= '' and pattern.name or pattern.id
      local name = (member.name ~= nil and member.name ~= '') and (' ' .. member.name) or ''
      table.insert(items, {
        filename = vim.fs.joinpath(root, member.path),
        lnum = member.start_line,
        end_lnum = member.end_line,
        col = 1,
        type = 'I',
        text = ('%s [%s %s %d%%] copy %d/%d%s'):format(
          label,
          pattern.id,
          pattern.kind or '',
          math.floor((pattern.similarity or 0) * 100 + 0.5),
          index,
          #members,
          name
        ),
      })
    end
  end
  return items
end

--- Runs the scan asynchronously; `on_done(err, report, items)` is called on the main loop.
---@param binary string
---@param root string
---@param on_done fun(err: string|nil, report: table|nil, items: table[]|nil)
function M.run(binary, root, on_done)
  local output = vim.fn.tempname() .. '.json'
  local ok, err = pcall(vim.system, { binary, 'scan', root, '--format', 'json', '--output', output, '--quiet' }, { text = true }, function(result)
    vim.schedule(function()
      -- Exit 1 means a failure threshold was exceeded: the report was still written.
      if result.code ~= 0 and result.code ~= 1 then
        local detail = vim.trim(result.stderr or '')
        on_done(('periodic scan failed (exit %s)%s'):format(tostring(result.code), detail ~= '' and (': ' .. detail) or ''))
        return
      end
      local file = io.open(output, 'r')
      if not file then
        on_done('periodic scan wrote no report to ' .. output)
        return
      end
      local text = file:read('*a')
      file:close()
      os.remove(output)
      local decoded_ok, report = pcall(vim.json.decode, text, { luanil = { object = true, array = true } })
      if not decoded_ok or type(report) ~= 'table' then
        on_done('the scan report is not JSON: ' .. tostring(report))
        return
      end
      on_done(nil, report, M.report_items(report, root))
    end)
  end)
  if not ok then
    on_done(('could not run %s: %s'):format(binary, tostring(err)))
  end
end

return M

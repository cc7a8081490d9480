-- wrk script: correctly signed Shopify orders/create deliveries, each with a webhook id of its own.
-- Shopify's HMAC covers only the body, so a pool of signed bodies makes unique, valid deliveries.
-- Arguments (after --): the bodies file (`hmac<TAB>body` per line) and a run id that keeps webhook ids
-- unique across runs against one data directory.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  hmacs, bodies = {}, {}
  for line in io.lines(args[1]) do
    local hmac, body = line:match("^([^\t]+)\t(.*)$")
    hmacs[#hmacs + 1], bodies[#bodies + 1] = hmac, body
  end
  prefix = string.format("%s-%d-", args[2] or "run", thread_id or 0)
  sent = 0
  wrk.method = "POST"
  wrk.path = "/shopify/webhook"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Shopify-Topic"] = "orders/create"
  wrk.headers["X-Shopify-Shop-Domain"] = "bench-shop.myshopify.com"
  wrk.headers["X-Shopify-API-Version"] = "2025-10"
end

function request()
  sent = sent + 1
  local i = sent % #bodies + 1
  wrk.headers["X-Shopify-Webhook-Id"] = prefix .. sent
  wrk.headers["X-Shopify-Hmac-Sha256"] = hmacs[i]
  return wrk.format(nil, nil, nil, bodies[i])
end

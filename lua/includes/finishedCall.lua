-- finishedCall(done, call, outcomes): the outcome (a number from `outcomes`)
-- of the call `call` ('<operation>:<token>') if it finished recently, else
-- nil. `done` is the object's sorted set of finished calls (member
-- '<call>:<outcome>', scored by when it may be forgotten, ms): a call that
-- ends a token (release, drop, abandon) or has its own (update) leaves
-- nothing else behind by which its resend could recognise it.
local function finishedCall(done, call, outcomes)
  for _, outcome in ipairs(outcomes) do
    if rcall('ZSCORE', done, call .. ':' .. outcome) then return outcome end
  end
  return nil
end

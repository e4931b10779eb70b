-- Virtual keys ("TianjiLLM_VerificationToken"). Rows travel as JSON so the Rust side reads the
-- columns it knows by name; timestamps are added as epoch seconds.

-- name: GetKeyByToken
SELECT to_jsonb(t)
       || jsonb_build_object('expires_epoch', extract(epoch FROM t."expires"))
FROM "TianjiLLM_VerificationToken" t
WHERE t."token" = $1;

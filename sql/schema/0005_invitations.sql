-- 0005_invitations.sql: invitation links of internal users (LiteLLM's LiteLLM_InvitationLink,
-- with the TianjiLLM_ prefix and LiteLLM's column names): made by /invitation/new, and by
-- /user/new and /key/generate with send_invite_email; the link is
-- {PROXY_BASE_URL}/ui?invitation_id=<id>.
CREATE TABLE IF NOT EXISTS "TianjiLLM_InvitationLink" (
    "id"          TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "user_id"     TEXT NOT NULL,
    "is_accepted" BOOLEAN NOT NULL DEFAULT false,
    "accepted_at" TIMESTAMP(3),
    "expires_at"  TIMESTAMP(3) NOT NULL,
    "created_at"  TIMESTAMP(3) NOT NULL DEFAULT now(),
    "created_by"  TEXT NOT NULL,
    "updated_at"  TIMESTAMP(3) NOT NULL DEFAULT now(),
    "updated_by"  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_InvitationLink_user_id_idx" ON "TianjiLLM_InvitationLink" ("user_id");

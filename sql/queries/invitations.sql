-- Invitation links ("TianjiLLM_InvitationLink"). Rows travel as JSON with timestamps as
-- ISO 8601 text.

-- name: InsertInvitation
INSERT INTO "TianjiLLM_InvitationLink" ("user_id", "expires_at", "created_by", "updated_by")
VALUES ($1, now() + interval '7 days', $2, $2)
RETURNING to_jsonb("TianjiLLM_InvitationLink".*);

-- name: GetInvitation
SELECT to_jsonb(i) FROM "TianjiLLM_InvitationLink" i WHERE i."id" = $1;

-- name: AcceptInvitation
UPDATE "TianjiLLM_InvitationLink"
SET "is_accepted" = $2,
    "accepted_at" = CASE WHEN $2 THEN now() ELSE NULL END,
    "updated_at" = now(),
    "updated_by" = $3
WHERE "id" = $1
RETURNING to_jsonb("TianjiLLM_InvitationLink".*);

-- name: DeleteInvitation
DELETE FROM "TianjiLLM_InvitationLink" WHERE "id" = $1
RETURNING to_jsonb("TianjiLLM_InvitationLink".*);

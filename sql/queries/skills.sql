-- Skills ("TianjiLLM_SkillsTable", "TianjiLLM_SkillVersionTable"). Rows travel as JSON without
-- their archive; archives are read on their own.

-- name: ListSkills
SELECT to_jsonb(s) - 'file_content' FROM "TianjiLLM_SkillsTable" s ORDER BY s."created_at", s."skill_id";

-- name: SkillHomes
-- Skills held by a provider account: the skill's id and the deployment holding it.
SELECT s."skill_id", s."metadata"->>'deployment_id' FROM "TianjiLLM_SkillsTable" s
WHERE s."metadata"->>'deployment_id' IS NOT NULL;

-- name: GetSkill
SELECT to_jsonb(s) - 'file_content' FROM "TianjiLLM_SkillsTable" s WHERE s."skill_id" = $1;

-- name: SkillArchive
-- $1 skill id, $2 version ('' for the latest)
SELECT COALESCE(v."file_content", s."file_content")
FROM "TianjiLLM_SkillsTable" s
LEFT JOIN "TianjiLLM_SkillVersionTable" v ON v."skill_id" = s."skill_id" AND v."version" = $2
WHERE s."skill_id" = $1 AND ($2 = '' OR v."version" IS NOT NULL);

-- name: InsertSkill
-- $1 id, $2 display_title, $3 description, $4 instructions, $5 latest_version, $6 archive,
-- $7 file_name, $8 metadata, $9 created_by
INSERT INTO "TianjiLLM_SkillsTable" AS t
    ("skill_id", "display_title", "description", "instructions", "source", "latest_version",
     "file_content", "file_name", "file_type", "metadata", "created_by", "updated_by")
VALUES ($1, $2, $3, $4, 'custom', $5, $6, $7, 'application/zip', $8, $9, $9)
RETURNING to_jsonb(t) - 'file_content';

-- name: SetSkillLatest
-- $1 id, $2 latest_version, $3 description, $4 instructions, $5 archive, $6 updated_by
UPDATE "TianjiLLM_SkillsTable" t
SET "latest_version" = $2, "description" = $3, "instructions" = $4, "file_content" = $5,
    "updated_by" = $6, "updated_at" = now()::timestamp(3)
WHERE t."skill_id" = $1
RETURNING to_jsonb(t) - 'file_content';

-- name: DeleteSkill
DELETE FROM "TianjiLLM_SkillsTable" s WHERE s."skill_id" = $1 RETURNING to_jsonb(s) - 'file_content';

-- name: InsertSkillVersion
-- $1 skill id, $2 version, $3 name, $4 description, $5 directory, $6 archive, $7 digest, $8 created_by
INSERT INTO "TianjiLLM_SkillVersionTable" AS v
    ("skill_id", "version", "name", "description", "directory", "file_content", "digest", "created_by")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING to_jsonb(v) - 'file_content';

-- name: ListSkillVersions
SELECT to_jsonb(v) - 'file_content' FROM "TianjiLLM_SkillVersionTable" v
WHERE v."skill_id" = $1 ORDER BY v."version" DESC;

-- name: DeleteSkillVersion
DELETE FROM "TianjiLLM_SkillVersionTable" v WHERE v."skill_id" = $1 AND v."version" = $2
RETURNING to_jsonb(v) - 'file_content';

-- AlterTable: the parameter search a training ran (each trial's family, params, rung, validation score and
-- seconds) is stored with the version it produced; versions trained before tuning moved into training have none.
ALTER TABLE "ModelVersion" ADD COLUMN "trials" JSONB;

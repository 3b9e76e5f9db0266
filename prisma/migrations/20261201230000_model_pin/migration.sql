-- AlterTable: an operator's rollback pins a version until they unpin it or a new one beats it on the hold-out.
ALTER TABLE "ModelVersion" ADD COLUMN "pinnedAt" TIMESTAMPTZ(3);

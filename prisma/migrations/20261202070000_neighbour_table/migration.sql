-- AlterTable: an item-to-item model (EASE, item-kNN, a blend) serves from a sparse item × item table stored with
-- its version; vector-only versions have none.
ALTER TABLE "ModelArtifact" ADD COLUMN "neighbours" BYTEA;

-- CreateEnum
CREATE TYPE "ModelStatus" AS ENUM ('TRAINING', 'READY', 'FAILED');

-- CreateTable
CREATE TABLE "ModelVersion" (
    "id" SERIAL NOT NULL,
    "algorithm" TEXT NOT NULL,
    "status" "ModelStatus" NOT NULL DEFAULT 'TRAINING',
    "params" JSONB NOT NULL,
    "dataFrom" TIMESTAMPTZ(3),
    "dataTo" TIMESTAMPTZ(3),
    "events" INTEGER NOT NULL DEFAULT 0,
    "users" INTEGER NOT NULL DEFAULT 0,
    "items" INTEGER NOT NULL DEFAULT 0,
    "metrics" JSONB,
    "timings" JSONB,
    "error" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMPTZ(3),
    "activatedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ModelVersion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ModelArtifact" (
    "versionId" INTEGER NOT NULL,
    "factors" INTEGER NOT NULL,
    "itemIds" TEXT[],
    "itemFactors" BYTEA NOT NULL,
    "userIds" TEXT[],
    "userFactors" BYTEA NOT NULL,
    "itemIndex" BYTEA NOT NULL,

    CONSTRAINT "ModelArtifact_pkey" PRIMARY KEY ("versionId")
);

-- CreateIndex
CREATE INDEX "ModelVersion_activatedAt_idx" ON "ModelVersion"("activatedAt");

-- AddForeignKey
ALTER TABLE "ModelArtifact" ADD CONSTRAINT "ModelArtifact_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateEnum
CREATE TYPE "ErasureKind" AS ENUM ('ERASURE', 'CONSENT_WITHDRAWN');

-- CreateTable: the erasure log, keyed by an HMAC of the shopper id (never the id itself).
CREATE TABLE "Erasure" (
    "id" BIGSERIAL NOT NULL,
    "subject" TEXT NOT NULL,
    "kind" "ErasureKind" NOT NULL,
    "erasedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "events" INTEGER NOT NULL,
    "profiles" INTEGER NOT NULL,
    "modelVectors" INTEGER NOT NULL,
    "onlineKeys" INTEGER NOT NULL DEFAULT 0,
    "queuedEvents" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "Erasure_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Erasure_subject_erasedAt_idx" ON "Erasure"("subject", "erasedAt");

-- CreateIndex
CREATE INDEX "Erasure_erasedAt_idx" ON "Erasure"("erasedAt");

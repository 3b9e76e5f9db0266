-- Experiments: A/B tests of models and rules, their history, the impression log (per shopper and phase) and attributed events.
CREATE TYPE "ExperimentChangeKind" AS ENUM ('STARTED', 'CHANGED', 'STOPPED');

-- CreateTable
CREATE TABLE "Experiment" (
    "id" TEXT NOT NULL,
    "placement" TEXT,
    "salt" TEXT NOT NULL,
    "trafficShare" DOUBLE PRECISION NOT NULL,
    "variants" JSONB NOT NULL,
    "phase" INTEGER NOT NULL DEFAULT 1,
    "startedAt" TIMESTAMPTZ(3) NOT NULL,
    "phaseStartedAt" TIMESTAMPTZ(3) NOT NULL,
    "stoppedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Experiment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ExperimentChange" (
    "id" BIGSERIAL NOT NULL,
    "experimentId" TEXT NOT NULL,
    "kind" "ExperimentChangeKind" NOT NULL,
    "phase" INTEGER NOT NULL,
    "trafficShare" DOUBLE PRECISION NOT NULL,
    "variants" JSONB NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExperimentChange_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ExperimentExposure" (
    "experimentId" TEXT NOT NULL,
    "phase" INTEGER NOT NULL,
    "userId" TEXT NOT NULL,
    "variant" TEXT NOT NULL,
    "lists" INTEGER NOT NULL,
    "firstServedAt" TIMESTAMPTZ(3) NOT NULL,
    "lastServedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ExperimentExposure_pkey" PRIMARY KEY ("experimentId","phase","userId")
);

-- CreateTable
CREATE TABLE "ExperimentEvent" (
    "eventId" TEXT NOT NULL,
    "experimentId" TEXT NOT NULL,
    "phase" INTEGER NOT NULL,
    "variant" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "type" "EventType" NOT NULL,
    "itemId" TEXT,
    "value" DECIMAL(12,2),
    "occurredAt" TIMESTAMPTZ(3) NOT NULL,
    "recommendationId" TEXT NOT NULL,

    CONSTRAINT "ExperimentEvent_pkey" PRIMARY KEY ("eventId")
);

-- CreateIndex
CREATE INDEX "ExperimentChange_experimentId_at_idx" ON "ExperimentChange"("experimentId", "at");

-- CreateIndex
CREATE INDEX "ExperimentExposure_userId_idx" ON "ExperimentExposure"("userId");

-- CreateIndex
CREATE INDEX "ExperimentEvent_experimentId_phase_variant_idx" ON "ExperimentEvent"("experimentId", "phase", "variant");

-- CreateIndex
CREATE INDEX "ExperimentEvent_userId_idx" ON "ExperimentEvent"("userId");

-- AddForeignKey
ALTER TABLE "ExperimentChange" ADD CONSTRAINT "ExperimentChange_experimentId_fkey" FOREIGN KEY ("experimentId") REFERENCES "Experiment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateEnum
CREATE TYPE "ApiKeyScope" AS ENUM ('ADMIN', 'SERVER', 'PUBLIC');

-- CreateTable: API keys, stored as the SHA-256 of their secret (the secret is shown once, at creation).
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL,
    "scope" "ApiKeyScope" NOT NULL,
    "description" TEXT,
    "secretHash" TEXT NOT NULL,
    "tokenKey" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_secretHash_key" ON "ApiKey"("secretHash");

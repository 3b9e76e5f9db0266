-- AlterTable: consent becomes "as the shopper said" (null: never said; CONSENT_DEFAULT decides). No API could
-- set it before, so every stored true was the column default, not a shopper's choice.
ALTER TABLE "User" ALTER COLUMN "consent" DROP NOT NULL,
ALTER COLUMN "consent" DROP DEFAULT,
ADD COLUMN "personalSince" TIMESTAMPTZ(3);

UPDATE "User" SET "consent" = NULL;

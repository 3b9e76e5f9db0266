-- CreateIndex: placeholders are counted against MAX_PLACEHOLDER_ITEMS and pruned by age (PLACEHOLDER_WINDOW_HOURS).
CREATE INDEX "Item_placeholder_createdAt_idx" ON "Item"("placeholder", "createdAt");

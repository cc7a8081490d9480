// Replays are limited to one per delivery per 5 minutes. An operator who replays twice must be told how long
// to wait, in place, without losing the page.

import { test, expect } from '../support/fixtures.js';
import { deliveryRow, firstReplayable, notices, replayButton, subscriptionPanel, toast } from '../support/webhooks.js';

// "… can be replayed again in 297 s": the wait, in seconds.
const SECONDS_LEFT = /\b\d+ ?s\b/;

test('replaying the same delivery twice is refused with the time left', async ({ dashboard: page, consoleErrors }) => {
  // The refusal is the API's 429, which Chromium logs when the script's fetch receives it.
  consoleErrors.allowStatus(429);
  const id = await firstReplayable(page);
  const row = deliveryRow(page, id);

  await replayButton(row).click();
  await expect(toast(page)).toContainText('Replay queued');
  await expect(toast(page)).toContainText(id);
  // At once, before the next refresh: queued, or (in the demo, to a healthy destination) replayed.
  await expect(row.locator('td.status')).toContainText(/replay queued|replayed/);
  // No second click is offered on this page: the button stays disabled after a replay.
  await expect(replayButton(row)).toBeDisabled();

  // A fresh page offers Replay again once the replay's own attempt has finished.
  await expect(async () => {
    await page.reload();
    await expect(replayButton(row)).toBeEnabled({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await replayButton(row).click();

  const banner = notices(page).filter({ hasText: 'Replay limit reached' });
  await expect(banner).toBeVisible();
  await expect(banner).toHaveClass(/banner-warning/);
  await expect(banner).toContainText(SECONDS_LEFT);
  // In place: the operator is still on the list, which still shows the delivery.
  await expect(page).toHaveURL(/\/dashboard\/webhooks$/);
  await expect(row).toBeVisible();
});

test.describe('the rate-limited demo', () => {
  test.use({ scenario: 'rate-limited' });

  test('replaying one of the three newest orders is refused', async ({ dashboard: page, consoleErrors }) => {
    consoleErrors.allowStatus(429);
    const orders = subscriptionPanel(page, 'shop-orders');
    await orders.locator('summary').first().click();
    await orders.getByRole('link', { name: 'Show its deliveries' }).click();
    await expect(page).toHaveURL(/subscription=/);

    // The scenario replayed the three newest a minute ago; the second of them stands for any.
    const row = page.locator('#deliveries tr[data-delivery]').nth(1);
    await replayButton(row).click();

    const banner = notices(page).filter({ hasText: 'Replay limit reached' });
    await expect(banner).toBeVisible();
    await expect(banner).toContainText(SECONDS_LEFT);
    await expect(toast(page)).toHaveCount(0);
  });
});

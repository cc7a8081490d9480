// The seed's flow: an orders destination has been failing; the operator sees it, fixes it (in the demo, by
// making its mock destination healthy), replays, watches the failure clear, and reads a payload in the modal.

import { readFile } from 'node:fs/promises';
import { test, expect } from '../support/fixtures.js';
import { deliveryRows, subscriptionPanel, toast } from '../support/webhooks.js';

test.use({ scenario: 'failing', permissions: ['clipboard-read', 'clipboard-write'] });

/** The demo banner's form for one mock destination. */
function demoForm(page, destination) {
  return page.locator('form.demo-form').filter({ has: page.locator(`input[name=destination][value="${destination}"]`) });
}

test('a failing destination is fixed, a replay clears the failure, and the payload opens in a modal', async ({ dashboard: page, hookplane }) => {
  const degraded = page.getByRole('alert').filter({ hasText: 'shop-orders is degraded' });
  await expect(degraded).toBeVisible();
  await expect(page.locator('.kpi').filter({ hasText: 'Failing topics' }).locator('.kpi-value')).toHaveText('1');

  // The demo's orders destination answers 200 from now on.
  const form = demoForm(page, 'shopify');
  await form.getByRole('combobox').selectOption('healthy');
  await form.getByRole('button', { name: 'Set' }).click();
  await expect(toast(page).filter({ hasText: 'Demo destination changed' })).toContainText('Healthy (200)');

  // Replay latest: the button is disabled, and busy, while its request is on its way.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/dashboard/webhooks', async (route) => {
    if (route.request().method() === 'POST') await held;
    await route.continue();
  });
  const orders = subscriptionPanel(page, 'shop-orders');
  await expect(orders).toHaveAttribute('open', '');
  const replayLatest = orders.getByRole('button', { name: 'Replay latest' });
  await replayLatest.click();
  await expect(replayLatest).toBeDisabled();
  await expect(replayLatest).toHaveAttribute('aria-busy', 'true');
  release();
  await expect(toast(page).filter({ hasText: 'Replay queued' })).toBeVisible();
  await page.unroute('**/dashboard/webhooks');

  // Delivered: the failure clears by itself, banner and figure alike.
  await expect(async () => {
    await page.reload();
    await expect(degraded).toHaveCount(0, { timeout: 500 });
    await expect(page.locator('.kpi').filter({ hasText: 'Failing topics' }).locator('.kpi-value')).toHaveText('0', { timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await expect(subscriptionPanel(page, 'shop-orders').locator('.badge').first()).toHaveText('Active');

  // The payload, over the list: pretty-printed, copied and downloaded as sent.
  const row = deliveryRows(page).filter({ hasText: 'orders/create' }).first();
  const id = await row.getAttribute('data-delivery');
  const sent = await (await page.request.get(`${hookplane.url}/dashboard/webhooks/deliveries/${id}/body`)).body();
  const menu = row.locator('details.menu summary');
  await menu.click();
  await row.getByRole('link', { name: 'View payload' }).click();
  const modal = page.getByRole('dialog', { name: /Payload of orders\/create/ });
  await expect(modal).toBeVisible();
  await expect(modal.locator('pre')).toContainText('"id":');
  // Still on the list, its filters kept.
  await expect(page).toHaveURL(/\/dashboard\/webhooks(\?|$)/);

  await modal.getByRole('button', { name: 'Copy' }).click();
  await expect(toast(page).filter({ hasText: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(sent.toString('utf8'));

  const [download] = await Promise.all([page.waitForEvent('download'), modal.getByRole('link', { name: 'Download' }).click()]);
  expect(Buffer.compare(await readFile(await download.path()), sent)).toBe(0);

  await page.keyboard.press('Escape');
  await expect(modal).toBeHidden();
  await expect(menu).toBeFocused();
});

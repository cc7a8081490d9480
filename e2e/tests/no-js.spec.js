// Without JavaScript the dashboard still does its job: every action is a form that posts, redirects and
// shows its outcome (post/redirect/get). The seed's flow, once more, with the script off.

import { test, expect } from '../support/fixtures.js';
import { subscriptionPanel } from '../support/webhooks.js';

test.use({ scenario: 'failing', javaScriptEnabled: false });

test("the seed's replay works by post/redirect/get", async ({ dashboard: page }) => {
  const degraded = page.getByRole('alert').filter({ hasText: 'shop-orders is degraded' });
  await expect(degraded).toBeVisible();

  const form = page.locator('form.demo-form').filter({ has: page.locator('input[name=destination][value="shopify"]') });
  await form.getByRole('combobox').selectOption('healthy');
  await form.getByRole('button', { name: 'Set' }).click();
  await expect(page).toHaveURL(/notice=demo_destination/);
  await expect(page.getByRole('status').filter({ hasText: 'Demo destination changed' })).toBeVisible();

  await subscriptionPanel(page, 'shop-orders').getByRole('button', { name: 'Replay latest' }).click();
  await expect(page).toHaveURL(/notice=replayed/);
  await expect(page.getByRole('status').filter({ hasText: 'Replay queued' })).toBeVisible();

  await expect(async () => {
    await page.goto(page.url().split('?')[0]);
    await expect(degraded).toHaveCount(0, { timeout: 500 });
  }).toPass({ timeout: 30_000 });

  // View payload is the delivery page itself.
  const row = page.locator('#deliveries tr[data-delivery]').first();
  await row.locator('details.menu summary').click();
  await row.getByRole('link', { name: 'View payload' }).click();
  await expect(page).toHaveURL(/\/dashboard\/webhooks\/deliveries\/dlv_/);
  await expect(page.getByRole('heading', { name: 'Payload' })).toBeVisible();
});

test('the retention toggle works by post/redirect/get and needs its confirmation', async ({ adminDashboard: page, hookplane }) => {
  await page.goto(`${hookplane.url}/dashboard/settings`);
  await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
  await expect(page.getByText('Keeping payloads 30 days')).toBeVisible();
  await page.getByRole('checkbox', { name: /keep payloads 30 days/ }).check();
  await page.getByRole('button', { name: 'Keep 30 days' }).click();
  await expect(page).toHaveURL(/saved=30/);
  await expect(page.getByText('Deliveries are now kept 30 days.')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Keep 7 days' })).toBeVisible();
});

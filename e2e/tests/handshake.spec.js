// Provider handshakes in the failing demo: Shopify has lost the products subscription since the watchdog's
// last run; Retry handshake in its panel re-creates it, and the panel says what it did.

import { test, expect } from '../support/fixtures.js';
import { subscriptionPanel, toast } from '../support/webhooks.js';

test.use({ scenario: 'failing' });

test('Retry handshake re-creates a subscription the shop lost and shows what it did', async ({ dashboard: page }) => {
  const products = subscriptionPanel(page, 'shop-products');
  await products.locator('summary').first().click();
  await expect(products).toContainText('verified');

  await products.getByRole('button', { name: 'Retry handshake' }).click();
  await expect(toast(page).filter({ hasText: 'Handshake repaired' })).toBeVisible();

  const after = subscriptionPanel(page, 'shop-products');
  await after.locator('summary').first().click();
  await after.getByText('Recent handshakes').click();
  await expect(after.locator('.handshakes li').first()).toContainText('repaired');
  await expect(after.locator('.handshakes li').first()).toContainText('created gid://shopify/WebhookSubscription/');
});

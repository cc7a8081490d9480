// Rotating a subscription's secret: a typo in the confirmation must change nothing, a matching pair must say
// what to do on the provider's side, and the audit log must record the rotation without the secret itself.

import { randomBytes } from 'node:crypto';
import { test, expect } from '../support/fixtures.js';
import { subscriptionPanel } from '../support/webhooks.js';

// Zoho subscriptions of the demo hold a secret of their own (`current`), so the dashboard offers rotation;
// Shopify ones verify with the app's secret, which is rotated in the environment instead.
const SUBSCRIPTION = 'zoho-leads';

function secretOf(panel) {
  return panel.locator('dl.facts dt', { hasText: /^Secret$/ }).locator('xpath=following-sibling::dd[1]').locator('code').first();
}

async function openRotation(page) {
  const panel = subscriptionPanel(page, SUBSCRIPTION);
  await panel.locator('summary').first().click();
  const rotate = panel.locator('details.rotate');
  await rotate.locator('summary', { hasText: 'Rotate secret' }).click();
  return { panel, form: rotate.locator('form') };
}

test('a rotation needs the secret twice, reminds of the provider, and is audited without it', async ({
  adminDashboard: page,
  hookplane,
  consoleErrors,
}) => {
  // The mismatch is refused with 400, which Chromium logs for the page that shows it.
  consoleErrors.allowStatus(400);
  const secret = `zoho-${randomBytes(16).toString('hex')}`;

  let { panel, form } = await openRotation(page);
  const before = (await secretOf(panel).textContent()).trim();
  expect(before).not.toBe('');

  await form.getByLabel('New secret').fill(secret);
  await form.getByLabel('Type it again').fill(`${secret}x`);
  await form.getByRole('button', { name: 'Rotate' }).click();
  const refusal = page.getByRole('alert').filter({ hasText: 'Nothing was changed' });
  await expect(refusal).toBeVisible();
  await expect(refusal).toContainText('differ');
  await expect(page.locator('body')).not.toContainText(secret);

  await page.goto(`${hookplane.url}/dashboard/webhooks`);
  ({ panel, form } = await openRotation(page));
  await expect(secretOf(panel)).toHaveText(before);

  await form.getByLabel('New secret').fill(secret);
  await form.getByLabel('Type it again').fill(secret);
  await form.getByRole('button', { name: 'Rotate' }).click();
  const done = page.getByRole('status').filter({ hasText: 'Secret rotated' });
  await expect(done).toBeVisible();
  await expect(done).toContainText(SUBSCRIPTION);
  // What to do next, on the provider's side, and until when the old secret still works.
  await expect(done).toContainText('Now update the secret in Zoho');
  await expect(done).toContainText('accepts both secrets');

  const after = subscriptionPanel(page, SUBSCRIPTION);
  await after.locator('summary').first().click();
  await expect(secretOf(after)).not.toHaveText(before);
  await expect(after.locator('dl.facts')).toContainText(`previous ${before} still accepted`);
  await expect(page.locator('body')).not.toContainText(secret);

  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  const entry = page.locator('table.audit-table tbody tr').filter({ hasText: 'secret_rotated' }).first();
  await expect(entry).toBeVisible();
  await expect(entry).toContainText('admin-token');
  await expect(entry).toContainText('secret_digest');
  await expect(entry).toContainText('previous_expires_at');
  await expect(page.locator('main')).not.toContainText(secret);
  expect(await page.content(), 'the audit page never holds the secret in clear').not.toContain(secret);
});

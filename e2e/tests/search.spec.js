// Payload search from the webhooks page: by a word, by a JSON path, and a mistake in the query told plainly.

import { test, expect } from '../support/fixtures.js';
import { deliveryRow, deliveryRows } from '../support/webhooks.js';

/** The newest order's id and its customer's email, read from its delivery page as an operator would. */
async function newestOrder(page, base) {
  await page.goto(`${base}/dashboard/webhooks?topic=orders%2Fcreate`);
  const row = deliveryRows(page).first();
  const id = await row.getAttribute('data-delivery');
  await row.getByRole('link').first().click();
  await expect(page.getByRole('heading', { name: 'Payload' })).toBeVisible();
  const payload = JSON.parse(await page.locator('#payload').textContent());
  return { id, email: payload.customer.email };
}

async function search(page, query) {
  const box = page.getByRole('searchbox', { name: 'Search payloads' });
  await box.fill(query);
  await box.press('Enter');
  await expect(page).toHaveURL(/[?&]q=/);
}

/** The highlighted fragment under a delivery's row. */
function matchOf(page, id) {
  return deliveryRow(page, id).locator('xpath=following-sibling::tr[1][contains(@class, "match-row")]').locator('mark');
}

test('a word of the payload finds its delivery, highlighted', async ({ dashboard: page, hookplane }) => {
  const order = await newestOrder(page, hookplane.url);
  // The email's second word carries its number (`sato318`), so it names about one customer.
  const word = order.email.split('@')[0].split('.')[1];
  await page.goto(`${hookplane.url}/dashboard/webhooks`);
  await search(page, word);

  await expect(deliveryRow(page, order.id)).toBeVisible();
  await expect(matchOf(page, order.id).first()).toHaveText(new RegExp(word, 'i'));
  await expect(page.getByRole('searchbox', { name: 'Search payloads' })).toHaveValue(word);
});

test('a JSON path query finds its delivery', async ({ dashboard: page, hookplane }) => {
  const order = await newestOrder(page, hookplane.url);
  await page.goto(`${hookplane.url}/dashboard/webhooks`);
  await search(page, `customer.email:"${order.email}"`);

  await expect(deliveryRow(page, order.id)).toBeVisible();
  await expect(matchOf(page, order.id).first()).toHaveText(new RegExp(order.email.replace(/\./g, '\\.'), 'i'));
  // Only that customer's deliveries: every row shown matched the path.
  for (const row of await deliveryRows(page).all()) {
    await expect(row.locator('xpath=following-sibling::tr[1]')).toContainText(order.email);
  }
});

test('a malformed query is explained, and the search can be corrected', async ({ dashboard: page, consoleErrors }) => {
  // The page that explains the mistake answers 400, which Chromium logs.
  consoleErrors.allowStatus(400);
  await search(page, '"unclosed phrase');

  const banner = page.getByRole('alert').filter({ hasText: 'These filters cannot be applied' });
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('not valid syntax');
  await expect(banner).toContainText('close brackets and quotes');
  // What was typed stays in the box to be corrected, and no unfiltered list is shown in place of results.
  await expect(page.getByRole('searchbox', { name: 'Search payloads' })).toHaveValue('"unclosed phrase');
  await expect(deliveryRows(page)).toHaveCount(0);
  await expect(page.getByRole('heading', { name: 'Subscriptions' })).toBeVisible();

  await search(page, 'a query cannot -only');
  await expect(banner).toHaveCount(0);

  await search(page, '-only');
  await expect(page.getByRole('alert').filter({ hasText: 'These filters cannot be applied' })).toContainText(
    'a query cannot only exclude',
  );
});

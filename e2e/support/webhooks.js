// Where things are on the webhooks page, as an operator finds them.

import { expect } from '@playwright/test';

/** The delivery table's rows, one per delivery (search matches add rows of their own, without the attribute). */
export function deliveryRows(page) {
  return page.locator('#deliveries tr[data-delivery]');
}

/** The row of one delivery. */
export function deliveryRow(page, id) {
  return page.locator(`#deliveries tr[data-delivery="${id}"]`);
}

/**
 * The Replay button a row offers. A row whose delivery cannot be replayed shows a disabled Replay with its
 * reason instead, so the enabled one is the form's.
 */
export function replayButton(row) {
  return row.getByRole('button', { name: 'Replay', exact: true });
}

/** The id of the newest delivery that can be replayed now. */
export async function firstReplayable(page) {
  const row = deliveryRows(page).filter({ has: page.locator('form[data-replay] button:enabled') }).first();
  await expect(row).toBeVisible();
  return row.getAttribute('data-delivery');
}

/** A subscription's panel on the webhooks page, by the name it shows. */
export function subscriptionPanel(page, name) {
  return page.locator('details.subscription').filter({
    has: page.locator('.subscription-name', { hasText: new RegExp(`^${name}$`) }),
  });
}

/** The transient message the page's script shows after an in-place action. */
export function toast(page) {
  return page.locator('.toast[role=status]');
}

/** The banners at the top of the page, where outcomes are told. */
export function notices(page) {
  return page.locator('#notices .banner');
}

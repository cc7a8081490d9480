// Every dashboard page must be usable with assistive technology and with a keyboard alone.

import AxeBuilder from '@axe-core/playwright';
import { test, expect } from '../support/fixtures.js';
import { PAGES, open } from '../support/pages.js';
import { toast } from '../support/webhooks.js';

const BLOCKING = new Set(['serious', 'critical']);

/** axe's findings, one readable line per element, for the failure message. */
function describe(violations) {
  return violations.flatMap((v) =>
    v.nodes.map((n) => `${v.impact} ${v.id} (${v.help}) at ${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
  );
}

for (const entry of PAGES) {
  test(`${entry.name}: axe finds nothing serious, and it reflows on a phone`, async ({ adminDashboard: page, hookplane }) => {
    await open(page, hookplane.url, entry, hookplane.apiToken);
    // Folded panels are part of the page too: subscriptions with their facts and rotation forms, menus.
    await page.evaluate(() => document.querySelectorAll('main details').forEach((d) => (d.open = true)));
    const { violations } = await new AxeBuilder({ page }).analyze();
    expect.soft(describe(violations.filter((v) => BLOCKING.has(v.impact))), 'serious or critical axe violations').toEqual([]);

    // WCAG 1.4.10 (reflow): at a phone's width a page scrolls one way only; wide tables scroll inside their card.
    await page.setViewportSize({ width: 390, height: 844 });
    await open(page, hookplane.url, entry, hookplane.apiToken);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect.soft(overflow, 'pixels the page is wider than a 390 px screen').toBeLessThanOrEqual(0);
  });
}

test('a replay can be made with the keyboard alone', async ({ dashboard: page }) => {
  await page.locator('body').focus();
  const MAX_TABS = 200;
  let tabs = 0;
  const onReplay = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      return el?.matches('form[data-replay] button[type=submit]') && el.textContent.trim() === 'Replay';
    });
  while (!(await onReplay())) {
    expect(tabs, `a Replay button within ${MAX_TABS} presses of Tab`).toBeLessThan(MAX_TABS);
    await page.keyboard.press('Tab');
    tabs++;
  }
  // The focus must be where a sighted keyboard user sees it.
  await expect(page.locator(':focus')).toBeInViewport();
  await page.keyboard.press('Enter');
  await expect(toast(page)).toContainText('Replay queued');
});

test('the payload modal: axe finds nothing serious with it open', async ({ dashboard: page }) => {
  const row = page.locator('#deliveries tr[data-delivery]').first();
  await row.locator('details.menu summary').click();
  await row.getByRole('link', { name: 'View payload' }).click();
  await expect(page.getByRole('dialog').locator('pre')).toBeVisible();
  const { violations } = await new AxeBuilder({ page }).analyze();
  expect(describe(violations.filter((v) => BLOCKING.has(v.impact))), 'serious or critical axe violations').toEqual([]);
});

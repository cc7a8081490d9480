// Every page of the dashboard, found the way a person finds them: from the top bar's links, the first
// delivery of the list, and the sign-in page a signed-out browser is sent to.

import { expect } from '@playwright/test';

/**
 * The pages, by a short name used in test titles and screenshot files. `nav` is the top bar's link text;
 * pages without one are reached another way (see `open`).
 */
export const PAGES = [
  { name: 'webhooks', nav: 'Webhooks', heading: 'Webhooks' },
  { name: 'delivery', heading: null },
  { name: 'bulk-replays', nav: 'Bulk replays', heading: 'Bulk replays' },
  { name: 'incidents', nav: 'Incidents', heading: 'Incidents' },
  { name: 'settings', nav: 'Settings', heading: 'Settings' },
  { name: 'erasures', nav: 'Erasures', heading: 'Erasures' },
  { name: 'api-tokens', nav: 'API tokens', heading: 'API tokens' },
  { name: 'audit-log', nav: 'Audit log', heading: 'Audit log' },
  { name: 'sign-in', heading: 'Sign in' },
];

/** The dashboard's own links in the top bar (the API docs link leaves the dashboard). */
export async function navLinks(page) {
  return page.locator('header.topbar nav a').evaluateAll((links) =>
    links
      .map((a) => ({ text: a.textContent.trim(), href: a.getAttribute('href') }))
      .filter((l) => l.href.startsWith('/dashboard/')),
  );
}

/**
 * Opens one page on `page`, which must be the admin's (every link shows only to an admin). The sign-in page
 * is shown to a browser without credentials, so the admin's bearer header is dropped for it and given back.
 */
export async function open(page, base, entry, bearer) {
  if (entry.name === 'sign-in') {
    await page.setExtraHTTPHeaders({});
    await page.goto(`${base}/login`);
    await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
    await page.setExtraHTTPHeaders({ Authorization: `Bearer ${bearer}` });
    return;
  }
  await page.goto(`${base}/dashboard/webhooks`);
  if (entry.name === 'delivery') {
    // A delivery that was forwarded, so the page shows its attempts too.
    const row = page.locator('#deliveries tr[data-delivery]').filter({ hasText: 'orders/create' }).first();
    await row.getByRole('link').first().click();
    await expect(page.getByRole('heading', { name: 'Payload' })).toBeVisible();
  } else if (entry.nav !== 'Webhooks') {
    await page.locator('header.topbar nav').getByRole('link', { name: entry.nav, exact: true }).click();
  }
  if (entry.heading) await expect(page.getByRole('heading', { name: entry.heading, level: 1 })).toBeVisible();
}

// Pictures of every dashboard page on a laptop and on a phone, to look at after a change to the pages. They go
// to artifacts/screenshots/, which is not committed.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '../support/fixtures.js';
import { PAGES, navLinks, open } from '../support/pages.js';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'screenshots');
const VIEWPORTS = [
  { name: 'desktop', width: 1440, height: 900 },
  { name: 'phone', width: 390, height: 844 },
];

test('every dashboard page, on a laptop and a phone', async ({ adminDashboard: page, hookplane }) => {
  // A page added to the top bar must be added here too, or it would go unseen.
  const known = PAGES.filter((p) => p.nav).map((p) => p.nav);
  for (const link of await navLinks(page)) expect(known, `the top bar's "${link.text}"`).toContain(link.text);

  for (const viewport of VIEWPORTS) {
    await page.setViewportSize({ width: viewport.width, height: viewport.height });
    for (const entry of PAGES) {
      await open(page, hookplane.url, entry, hookplane.apiToken);
      await page.screenshot({ path: path.join(OUT, `${entry.name}-${viewport.name}.png`), fullPage: true });
    }
  }
});

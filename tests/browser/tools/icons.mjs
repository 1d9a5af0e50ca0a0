// Renders the app icons of the web app manifest from the favicon's design, with Chromium.
// Usage: node tools/icons.mjs  (writes assets/icons/*.png; commit them, build.rs embeds them)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../e2e/harness.mjs';

const assets = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets');
const favicon = readFileSync(path.join(assets, 'favicon.svg'), 'utf8');
/** "maskable": full bleed, the glyph inside the 80% safe circle launchers crop to. */
const maskable = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" fill="#2563eb"/>
  <g transform="translate(32 32) scale(.62) translate(-32 -32)"><rect x="12" y="20" width="28" height="24" rx="5" fill="#fff"/><path d="M42 28l10-6v20l-10-6z" fill="#fff"/></g></svg>`;

const browser = await launch();
try {
  const page = await browser.newPage();
  for (const [name, svg, size] of [
    ['icon-192.png', favicon, 192], ['icon-512.png', favicon, 512], ['icon-maskable-512.png', maskable, 512],
  ]) {
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(`<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${svg}`);
    await page.screenshot({ path: path.join(assets, 'icons', name), omitBackground: true });
  }
} finally {
  await browser.close();
}

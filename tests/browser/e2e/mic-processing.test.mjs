// Microphone processing (issue 16): noise suppression, echo cancellation and automatic gain
// control in the device panel, on by default, applied to the running microphone and to what is
// sent, and remembered for the next visit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** The processing the microphone being sent has, as the browser reports it. */
const sentProcessing = () => {
  const track = window.__pcs.flatMap((pc) => pc.getSenders()).find((s) => s.track?.kind === 'audio')?.track;
  if (!track) return null;
  const s = track.getSettings();
  return { noiseSuppression: s.noiseSuppression, echoCancellation: s.echoCancellation, autoGainControl: s.autoGainControl };
};

test('the processing toggles are on by default, change the microphone, and are remembered', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  try {
    const page = ada.page;
    await page.goto(`${server.url}/r/processing`);
    await page.getByText('Choose camera, microphone and speaker').click();
    for (const name of ['Noise suppression', 'Echo cancellation', 'Automatic gain control']) {
      assert.equal(await page.getByRole('checkbox', { name }).isChecked(), true, `${name} on by default`);
    }
    await page.getByRole('checkbox', { name: 'Noise suppression' }).uncheck();
    await page.getByRole('checkbox', { name: 'Automatic gain control' }).uncheck();
    // Remembered across a reload.
    await page.reload();
    await page.getByText('Choose camera, microphone and speaker').click();
    assert.equal(await page.getByRole('checkbox', { name: 'Noise suppression' }).isChecked(), false);
    assert.equal(await page.getByRole('checkbox', { name: 'Echo cancellation' }).isChecked(), true);
    assert.equal(await page.getByRole('checkbox', { name: 'Automatic gain control' }).isChecked(), false);

    await page.getByLabel('Your name').fill('Ada');
    await page.getByRole('button', { name: 'Turn microphone on' }).click();
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('button', { name: 'Leave' }).waitFor();
    await bo.page.goto(`${server.url}/r/processing`);
    await bo.page.getByLabel('Your name').fill('Bo');
    await bo.page.getByRole('button', { name: 'Join', exact: true }).click();
    await waitFor(page, () => {
      const s = (() => {
        const track = window.__pcs.flatMap((pc) => pc.getSenders()).find((x) => x.track?.kind === 'audio')?.track;
        return track?.getSettings();
      })();
      return s?.noiseSuppression === false && s?.autoGainControl === false && s?.echoCancellation === true;
    }, undefined, { what: 'the sent microphone with the chosen processing' });
    assert.deepEqual(await page.evaluate(sentProcessing), { noiseSuppression: false, echoCancellation: true, autoGainControl: false });
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});

test('turning a toggle on a running microphone changes it at once', async () => {
  const { context, page } = await participant(browser);
  try {
    await page.goto(`${server.url}/r/processing-live`);
    await page.getByRole('button', { name: 'Turn microphone on' }).click();
    await page.getByRole('button', { name: 'Turn microphone off' }).waitFor();
    await page.getByText('Choose camera, microphone and speaker').click();
    await page.getByRole('checkbox', { name: 'Echo cancellation' }).uncheck();
    // The lobby's microphone (its level meter and, on Join, what is sent).
    await waitFor(page, () => {
      const audio = document.querySelector('#preview')?.srcObject?.getAudioTracks?.()[0];
      return audio?.readyState === 'live' && audio.getSettings().echoCancellation === false;
    }, undefined, { what: 'echo cancellation off on the running microphone' });
  } finally {
    await context.close();
  }
});

// Device lists for the pickers and the camera flip. Labels are empty until the browser has
// granted access once, so lists are refreshed after each grant.

/**
 * @param {MediaDevices | undefined} mediaDevices
 * @returns {Promise<{ audioinput: MediaDeviceInfo[], videoinput: MediaDeviceInfo[], audiooutput: MediaDeviceInfo[] }>}
 */
export async function listDevices(mediaDevices = globalThis.navigator?.mediaDevices) {
  /** @type {{ audioinput: MediaDeviceInfo[], videoinput: MediaDeviceInfo[], audiooutput: MediaDeviceInfo[] }} */
  const lists = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!mediaDevices?.enumerateDevices) return lists;
  try {
    for (const device of await mediaDevices.enumerateDevices()) {
      if (lists[device.kind] && device.deviceId) lists[device.kind].push(device);
    }
  } catch {
    /* no devices to show */
  }
  return lists;
}

/**
 * Fills a <select> with devices; the first option is the system default.
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string} chosen
 * @param {import('./i18n.js').Translate} t
 * @param {string} kindLabel
 */
export function fillPicker(select, devices, chosen, t, kindLabel) {
  const options = [new Option(t('defaultDevice'), '')];
  devices.forEach((device, i) => {
    if (device.deviceId === 'default') return;
    options.push(new Option(device.label || t('deviceN', { kind: kindLabel, n: i + 1 }), device.deviceId));
  });
  select.replaceChildren(...options);
  select.value = devices.some((d) => d.deviceId === chosen) ? chosen : '';
}

/** Whether the speaker can be chosen: Chromium's setSinkId. */
export function canPickSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

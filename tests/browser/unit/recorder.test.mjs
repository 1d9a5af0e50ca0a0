// The recording protocol of a page (recorder.js's RecordingFlow): nothing is recorded before the
// server's go-ahead, the host's switch-off and a refusal stop it, a stale echo is not mistaken
// for an answer, a reconnect says it again, leaving keeps the file; and the grid's layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingFlow, layout } from '../../../assets/js/recorder.js';

const kinds = (steps) => steps.map((s) => (s.do === 'send' ? `send:${s.recording}` : s.do === 'say' ? `say:${s.key}` : s.do));

test('recording: asked first, recorded only once the server says everyone was told, stopped on Stop', () => {
  const flow = new RecordingFlow();
  assert.deepEqual(kinds(flow.start(true)), ['send:true']);
  assert.equal(flow.phase, 'asking');
  assert.ok(flow.active, 'the button says Stop recording from the click on');
  assert.deepEqual(kinds(flow.start(true)), [], 'a second click while asking sends nothing more');
  assert.deepEqual(kinds(flow.confirmed(true)), ['start-recorder']);
  assert.equal(flow.phase, 'recording');
  assert.deepEqual(kinds(flow.confirmed(true)), [], 'the same word again changes nothing');
  assert.deepEqual(kinds(flow.stop()), ['stop-recorder', 'send:false']);
  assert.equal(flow.phase, 'stopping');
  assert.deepEqual(kinds(flow.confirmed(false)), [], 'the echo of our own stop');
  flow.finished();
  assert.equal(flow.phase, 'idle');
});

test('recording: not allowed in the room: nothing is asked, the file chosen is given back, the person is told', () => {
  const flow = new RecordingFlow();
  assert.deepEqual(kinds(flow.start(false)), ['discard', 'say:errRecordingOff']);
  assert.equal(flow.phase, 'idle');
});

test('recording: the server refuses (the host turned it off just before): idle again, told why', () => {
  const flow = new RecordingFlow();
  flow.start(true);
  assert.deepEqual(kinds(flow.refused()), ['discard', 'say:errRecordingOff']);
  assert.equal(flow.phase, 'idle');
  assert.deepEqual(kinds(flow.confirmed(false)), []);
});

test('recording: the host turns it off while recording: the recorder stops and the person is told', () => {
  const flow = new RecordingFlow();
  flow.start(true);
  flow.confirmed(true);
  assert.deepEqual(kinds(flow.confirmed(false)), ['stop-recorder', 'say:recordingStoppedByHost']);
  assert.equal(flow.phase, 'stopping');
  flow.finished();
  assert.equal(flow.phase, 'idle');
});

test('recording: a stop\'s echo arriving after a new start is not the answer to it', () => {
  const flow = new RecordingFlow();
  flow.start(true);
  flow.confirmed(true);
  flow.stop();
  flow.finished();
  flow.start(true);
  assert.deepEqual(kinds(flow.confirmed(false)), [], 'the old stop, still on its way');
  assert.equal(flow.phase, 'asking');
  assert.deepEqual(kinds(flow.confirmed(true)), ['start-recorder']);
});

test('recording: Stop before the answer takes the request back; the server believing we record is corrected', () => {
  const flow = new RecordingFlow();
  flow.start(true);
  assert.deepEqual(kinds(flow.stop()), ['send:false', 'discard']);
  assert.equal(flow.phase, 'idle');
  assert.deepEqual(kinds(flow.confirmed(true)), ['send:false'], 'the go-ahead came after all: say no');
});

test('recording: a reconnect says it again, and a refusal then stops the recorder', () => {
  const flow = new RecordingFlow();
  assert.deepEqual(kinds(flow.reconnected()), [], 'nothing to say when not recording');
  flow.start(true);
  flow.confirmed(true);
  assert.deepEqual(kinds(flow.reconnected()), ['send:true']);
  assert.deepEqual(kinds(flow.refused()), ['stop-recorder', 'say:recordingStoppedByHost']);
});

test('recording: the recorder failing by itself ends it for everyone', () => {
  const flow = new RecordingFlow();
  flow.start(true);
  flow.confirmed(true);
  assert.deepEqual(kinds(flow.failed('recordingMemoryLimit')), ['stop-recorder', 'send:false', 'say:recordingMemoryLimit']);
  assert.deepEqual(kinds(flow.failed('recordingFailed')), [], 'once');
});

test('recording: leaving keeps what was recorded; leaving while asking keeps nothing', () => {
  const recording = new RecordingFlow();
  recording.start(true);
  recording.confirmed(true);
  assert.deepEqual(kinds(recording.leave()), ['stop-recorder']);
  const asking = new RecordingFlow();
  asking.start(true);
  assert.deepEqual(kinds(asking.leave()), ['discard']);
  assert.equal(asking.phase, 'idle');
});

test('recording: the tiles fill the frame in a grid, the last row centred', () => {
  assert.deepEqual(layout(1, 1280, 720), [{ x: 0, y: 0, w: 1280, h: 720 }]);
  const three = layout(3, 1280, 720);
  assert.equal(three.length, 3);
  assert.deepEqual(three.map((c) => [c.x, c.y]), [[0, 0], [640, 0], [320, 360]]);
  const six = layout(6, 1200, 600);
  assert.ok(six.every((c) => c.w === 400 && c.h === 300));
});

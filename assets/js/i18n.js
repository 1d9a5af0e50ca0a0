// Every string the client shows, in English and Russian. Pure: node tests that both languages
// have every key.

export const STRINGS = {
  en: {
    appName: 'VideoMeet',
    tagline: 'Video meetings for up to six people. Nothing leaves your server but the call itself.',
    createRoom: 'Create a room',
    joinExisting: 'Or join a room by name',
    roomName: 'Room name',
    go: 'Go to room',
    badRoomName: 'Use 1 to 64 letters, digits or dashes.',
    joinTitle: 'Join {room}',
    yourName: 'Your name',
    namePlaceholder: 'How others see you',
    join: 'Join',
    joining: 'Joining…',
    cameraOn: 'Turn camera on',
    cameraOff: 'Turn camera off',
    micOn: 'Turn microphone on',
    micOff: 'Turn microphone off',
    leave: 'Leave',
    previewOff: 'Your camera is off',
    lobbyHint: 'Nothing is asked of your browser until you turn something on.',
    roomPassword: 'Room password',
    you: 'You',
    muted: 'Microphone off',
    cameraIsOff: 'Camera off',
    reconnecting: 'Reconnecting…',
    reconnectingBanner: 'Connection to the server lost. Reconnecting…',
    peerAway: 'Reconnecting…',
    joined: '{name} joined',
    left: '{name} left',
    errPermission: 'Your browser was not allowed to use the camera or microphone. You can still join to watch and listen; change the permission in the address bar to be seen or heard.',
    errNoDevice: 'No camera or microphone was found. You can still join to watch and listen.',
    errBusy: 'The camera or microphone is in use by another program. Close it and try again, or join without it.',
    errMedia: 'The camera or microphone could not be started: {message}',
    errRoomFull: 'This room already has six people. Try again later or create another room.',
    errBadPassword: 'This room needs a password. Type it and press Join.',
    errReplaced: 'You joined this meeting from another tab or device, so this tab has left.',
    errServerBusy: 'The server is too busy right now. Trying again…',
    errLocked: 'The host has locked this room.',
    errRemoved: 'The host removed you from this meeting.',
    errBadRequest: 'The server did not understand: {message}',
    errGeneric: 'Something went wrong: {message}',
    leftTitle: 'You left the meeting',
    rejoin: 'Rejoin',
    home: 'Start page',
    alone: 'You are the only one here. Share the link to invite others.',
  },
  ru: {
    appName: 'VideoMeet',
    tagline: 'Видеовстречи до шести человек. С вашего сервера уходит только сам звонок.',
    createRoom: 'Создать комнату',
    joinExisting: 'Или войдите в комнату по имени',
    roomName: 'Имя комнаты',
    go: 'Перейти в комнату',
    badRoomName: 'От 1 до 64 латинских букв, цифр или дефисов.',
    joinTitle: 'Вход в {room}',
    yourName: 'Ваше имя',
    namePlaceholder: 'Как вас увидят другие',
    join: 'Войти',
    joining: 'Входим…',
    cameraOn: 'Включить камеру',
    cameraOff: 'Выключить камеру',
    micOn: 'Включить микрофон',
    micOff: 'Выключить микрофон',
    leave: 'Выйти',
    previewOff: 'Камера выключена',
    lobbyHint: 'Браузер ничего не спросит, пока вы сами что-нибудь не включите.',
    roomPassword: 'Пароль комнаты',
    you: 'Вы',
    muted: 'Микрофон выключен',
    cameraIsOff: 'Камера выключена',
    reconnecting: 'Переподключение…',
    reconnectingBanner: 'Связь с сервером потеряна. Переподключаемся…',
    peerAway: 'Переподключается…',
    joined: '{name} вошёл(а)',
    left: '{name} вышел(а)',
    errPermission: 'Браузеру не разрешили камеру или микрофон. Можно войти, чтобы смотреть и слушать; разрешение меняется в адресной строке.',
    errNoDevice: 'Камера или микрофон не найдены. Можно войти, чтобы смотреть и слушать.',
    errBusy: 'Камера или микрофон заняты другой программой. Закройте её и попробуйте снова или войдите без них.',
    errMedia: 'Не удалось включить камеру или микрофон: {message}',
    errRoomFull: 'В комнате уже шесть человек. Попробуйте позже или создайте другую комнату.',
    errBadPassword: 'У комнаты есть пароль. Введите его и нажмите «Войти».',
    errReplaced: 'Вы вошли в эту встречу из другой вкладки или с другого устройства, эта вкладка вышла.',
    errServerBusy: 'Сервер сейчас перегружен. Пробуем снова…',
    errLocked: 'Организатор закрыл комнату.',
    errRemoved: 'Организатор удалил вас из встречи.',
    errBadRequest: 'Сервер не понял запрос: {message}',
    errGeneric: 'Что-то пошло не так: {message}',
    leftTitle: 'Вы вышли из встречи',
    rejoin: 'Войти снова',
    home: 'На главную',
    alone: 'Вы здесь одни. Поделитесь ссылкой, чтобы пригласить других.',
  },
};

/**
 * Picks the first supported language from the browser's list.
 * @param {readonly string[]} languages e.g. navigator.languages
 */
export function pickLanguage(languages) {
  for (const lang of languages ?? []) {
    const base = String(lang).toLowerCase().split('-')[0];
    if (base in STRINGS) return base;
  }
  return 'en';
}

/**
 * A translator for one language; `{name}` placeholders are filled from `vars`.
 * @param {string} lang
 */
export function translator(lang) {
  const table = STRINGS[lang] ?? STRINGS.en;
  return (key, vars = {}) => {
    const text = table[key] ?? STRINGS.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  };
}

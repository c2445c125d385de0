// Italian and English strings of the console; t(key) in the current language.
const strings = {
  it: {
    login: 'Accedi', user: 'Utente', password: 'Password', logout: 'Esci',
    login_help: 'Solo installatori e amministratori.',
    cameras: 'Telecamere', proposals: 'Proposte', snapshot: 'Istantanea mascherata', edit: 'Modifica vista',
    online: 'in linea', offline: 'non in linea', locked: 'bloccata', blank: 'oscurata', verified: 'vista verificata',
    not_verified: 'vista non verificata', fps: 'fps ingresso/uscita', last_event: 'ultimo evento',
    view: 'Vista', fixed_view: 'vista fissa', preset: 'preset',
    masks: 'Maschere', new_mask: 'Nuova maschera', delete_mask: 'Elimina maschera', name: 'Nome', style: 'Stile',
    fill: 'riempimento', pixelate: 'pixel', blur: 'sfocatura', color: 'Colore', block: 'Blocco (px)', strength: 'Intensità (px)',
    undo: 'Annulla', redo: 'Ripeti', snap: 'Aggancia ai bordi', delete_point: 'Elimina punto',
    render: 'Anteprima (masker di Velo)', save: 'Salva proposta', note: 'Nota',
    editor_help: 'Clic sull\'immagine: aggiunge un punto. Trascina un punto per spostarlo. Tastiera: frecce spostano il punto, Canc lo elimina, Ctrl+Z / Ctrl+Y annulla/ripeti, N nuovo punto dopo quello scelto.',
    commissioning: 'Messa in servizio', reason: 'Motivo', open_comm: 'Apri sessione (15 min)', close_comm: 'Chiudi sessione',
    comm_until: 'Sessione aperta fino alle', unmasked: 'Immagine non mascherata (filigranata)',
    comm_help: 'L\'immagine non mascherata si vede solo in una sessione di messa in servizio, con motivo, registrata.',
    saved: 'Proposta salvata: ha effetto solo dopo l\'approvazione di un amministratore.',
    approve: 'Approva', approved_by: 'Approvata da', date: 'Data', document: 'Documento',
    status_proposed: 'proposta', status_approved: 'approvata', status_superseded: 'sostituita', back: 'Indietro',
    by: 'da', none: 'Nessuna proposta.', error: 'Errore',
    ptz: 'Brandeggio (PTZ)', step: 'Passo', position: 'Posizione',
    ptz_help: 'Muove la telecamera solo in questa sessione: il flusso resta oscurato finché la sessione non si chiude e la telecamera torna alla vista approvata. Tastiera sul riquadro: frecce, + e -.',
    left: 'Sinistra', right: 'Destra', up: 'Su', down: 'Giù', zoom_in: 'Zoom avanti', zoom_out: 'Zoom indietro',
    preset_name: 'Nome del preset', save_preset: 'Salva come preset proposto', preset_saved: 'Preset proposto: ha effetto solo dopo l\'approvazione di un amministratore. Token',
    new_preset: 'Nuovo preset',
  },
  en: {
    login: 'Log in', user: 'User', password: 'Password', logout: 'Log out',
    login_help: 'Installers and admins only.',
    cameras: 'Cameras', proposals: 'Proposals', snapshot: 'Masked snapshot', edit: 'Edit view',
    online: 'online', offline: 'offline', locked: 'locked', blank: 'blank', verified: 'view verified',
    not_verified: 'view not verified', fps: 'fps in/out', last_event: 'last event',
    view: 'View', fixed_view: 'fixed view', preset: 'preset',
    masks: 'Masks', new_mask: 'New mask', delete_mask: 'Delete mask', name: 'Name', style: 'Style',
    fill: 'fill', pixelate: 'pixelate', blur: 'blur', color: 'Colour', block: 'Block (px)', strength: 'Strength (px)',
    undo: 'Undo', redo: 'Redo', snap: 'Snap to frame edge', delete_point: 'Delete point',
    render: 'Preview (Velo\'s masker)', save: 'Save proposal', note: 'Note',
    editor_help: 'Click the picture: adds a point. Drag a point to move it. Keyboard: arrows move the point, Delete removes it, Ctrl+Z / Ctrl+Y undo/redo, N adds a point after the selected one.',
    commissioning: 'Commissioning', reason: 'Reason', open_comm: 'Open session (15 min)', close_comm: 'Close session',
    comm_until: 'Session open until', unmasked: 'Unmasked still (watermarked)',
    comm_help: 'The unmasked picture is shown only in a commissioning session, with a reason, audited.',
    saved: 'Proposal saved: it takes effect only once an admin approves it.',
    approve: 'Approve', approved_by: 'Approved by', date: 'Date', document: 'Document',
    status_proposed: 'proposed', status_approved: 'approved', status_superseded: 'superseded', back: 'Back',
    by: 'by', none: 'No proposals.', error: 'Error',
    ptz: 'Pan, tilt, zoom', step: 'Step', position: 'Position',
    ptz_help: 'Moves the camera in this session only: the stream stays blank until the session closes and the camera is back at its approved view. Keyboard on the pad: arrows, + and -.',
    left: 'Left', right: 'Right', up: 'Up', down: 'Down', zoom_in: 'Zoom in', zoom_out: 'Zoom out',
    preset_name: 'Preset name', save_preset: 'Save as proposed preset', preset_saved: 'Preset proposed: it takes effect only once an admin approves it. Token',
    new_preset: 'New preset',
  },
};

let lang = (localStorage.getItem('velo-lang') || navigator.language || 'it').slice(0, 2) === 'en' ? 'en' : 'it';

export function t(key) { return (strings[lang] && strings[lang][key]) || key; }
export function language() { return lang; }
export function setLanguage(l) {
  lang = l === 'en' ? 'en' : 'it';
  localStorage.setItem('velo-lang', lang);
  document.documentElement.lang = lang;
}
// translate fills every [data-i18n] element under root.
export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}

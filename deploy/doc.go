// Package deploy holds no Go code of its own: its tests check the
// packaging (deb/: contents, maintainer scripts, lintian), the systemd unit
// (systemd/), the central broker config (mosquitto/), the arm64 cross build
// (arm64/), and the hygiene of the whole checkout (no committed binaries, no
// references to guidance kept outside the repository).
package deploy

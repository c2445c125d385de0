// Package deploy holds no Go code of its own: its tests check the
// packaging (deb/), the systemd unit (systemd/) and the central broker
// config (mosquitto/) in this folder.
package deploy

package config

import (
	"fmt"
	"slices"
	"strings"
)

// defaultCredentials are user/password pairs cameras leave the factory
// with (Hikvision, Dahua, Axis, Bosch, Hanwha, Uniview, Vivotek, Mobotix,
// Panasonic, Sony, FLIR, ACTi, Ubiquiti and generic OEM firmware). A
// camera still using one is open to anyone on its network (G-3.3.1 e).
var defaultCredentials = map[string][]string{
	"admin":         {"", "admin", "1234", "12345", "123456", "4321", "9999", "1111111", "password", "meinsm", "fliradmin", "admin123", "system"},
	"root":          {"", "root", "pass", "admin", "12345", "ikwd", "vizxv"},
	"service":       {"service"},
	"supervisor":    {"supervisor"},
	"administrator": {"", "1234", "admin"},
	"888888":        {"888888"},
	"666666":        {"666666"},
	"ubnt":          {"ubnt"},
	"user":          {"user", "1234"},
	"guest":         {"", "guest"},
}

// isDefaultCredential reports whether user/password is a factory default.
func isDefaultCredential(user, password string) bool {
	for _, p := range defaultCredentials[strings.ToLower(user)] {
		if p == password {
			return true
		}
	}
	return false
}

// checkCameraCredential refuses a camera whose credential is a factory
// default and warns about a camera with none (G-3.3.1 e). The password is
// never part of the message.
func (c *Config) checkCameraCredential(i int) error {
	cam := &c.Cameras[i]
	if cam.Username == "" {
		msg := fmt.Sprintf("cameras[%d].username: camera %q: no credentials: anyone on its network can read and move it; set a user of its own (G-3.3.1 e)", i, cam.ID)
		if !slices.Contains(c.Warnings, msg) {
			c.Warnings = append(c.Warnings, msg)
		}
		return nil
	}
	if isDefaultCredential(cam.Username, cam.Password.Reveal()) {
		return c.fieldError(fmt.Sprintf("cameras[%d].password_file", i), "camera %q: user %q still has a factory-default password: change it on the camera first (G-3.3.1 e)", cam.ID, cam.Username)
	}
	return nil
}

// Package safefile writes files without following links and reads
// bounded regular files. Velo's commands run as root in folders other
// users can write (an operator's --out folder, the service's state
// directory): a link planted at a predictable name must never redirect a
// write, and a FIFO, a device or a huge file named where a config or a
// secret is expected must never hang or exhaust the agent.
package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// File is a file being written: a new file with a random name in the
// target's folder, put at the target by Commit. Until then the target is
// untouched.
type File struct {
	f         *os.File
	path      string
	noReplace bool
	done      bool
}

// Create starts writing path: it creates a new file with a random name in
// path's folder, with O_EXCL and O_NOFOLLOW (an existing file or link
// there is never opened) and mode perm (exact, whatever the umask). Commit
// replaces path with it; a link at path is replaced, never followed.
func Create(path string, perm fs.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if len(base) > 200 { // the temporary name stays under NAME_MAX
		base = base[:200]
	}
	for range 10 {
		var rnd [8]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm.Perm())
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		// The mode is set on the descriptor, never through a path.
		if err := f.Chmod(perm.Perm()); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		return &File{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("create %s: no free temporary name", path)
}

// CreateNew is Create, but Commit refuses to replace anything already at
// path (a file, a link or a directory).
func CreateNew(path string, perm fs.FileMode) (*File, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("create %s: %w", path, fs.ErrExist)
	}
	f, err := Create(path, perm)
	if err != nil {
		return nil, err
	}
	f.noReplace = true
	return f, nil
}

// Write writes to the new file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Chown gives the new file an owner, through its descriptor.
func (f *File) Chown(uid, gid int) error { return f.f.Chown(uid, gid) }

// Name is the target path.
func (f *File) Name() string { return f.path }

// Commit fsyncs the new file and renames it to the target (then fsyncs
// the folder). On error the new file is removed and the target is as it
// was.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already done", f.path)
	}
	f.done = true
	tmp := f.f.Name()
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(tmp, f.path, f.noReplace)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	syncDir(filepath.Dir(f.path))
	return nil
}

// Abort removes the new file; the target is untouched. After Commit it
// does nothing, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	os.Remove(f.f.Name())
}

// WriteFile writes data to path with mode perm through Create: the
// target is replaced whole, never written through a link.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// rename moves tmp to path; with noReplace it fails if path exists. A
// filesystem without RENAME_NOREPLACE gets a hard link instead, which
// fails the same way.
func rename(tmp, path string, noReplace bool) error {
	if !noReplace {
		return os.Rename(tmp, path)
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
		}
		return nil
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return os.Remove(tmp)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

package gale

import "syscall"

// pseudoFilesystems names the Linux filesystems whose files the kernel
// generates when they are read: stat reports a size (0, or a page) that
// says nothing of their content, so they cannot be split by size.
var pseudoFilesystems = map[int64]string{
	0x9fa0:     "proc",
	0x62656572: "sysfs",
	0x64626720: "debugfs",
	0x74726163: "tracefs",
	0x73636673: "securityfs",
	0x27e0eb:   "cgroup",
	0x63677270: "cgroup2",
	0x62656570: "configfs",
	0xde5e81e4: "efivarfs",
	0xcafe4a11: "bpf",
}

// pseudoFS returns the name of the kernel pseudo-filesystem that holds
// path, or "" for an ordinary one (or when statfs fails: the open that
// follows reports that).
func pseudoFS(path string) string {
	var st syscall.Statfs_t
	if syscall.Statfs(path, &st) != nil {
		return ""
	}
	return pseudoFilesystems[int64(st.Type)]
}

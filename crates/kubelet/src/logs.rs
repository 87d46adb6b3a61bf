//! Container logs: the CRI log file format containerd writes
//! (`<RFC3339Nano> <stdout|stderr> <F|P> <content>`), the reader behind
//! `kubectl logs` (as the kubelet's `kuberuntime/logs.ReadLogs`: tail,
//! since, timestamps, limitBytes, follow across rotation), and rotation as
//! the kubelet's container log manager does it.

use std::collections::VecDeque;
use std::io::{self, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

use crate::cri::{api, Runtime};

/// How often a follower looks for new data (and for rotation).
const POLL: Duration = Duration::from_millis(100);
/// Output is handed out in chunks of about this size.
const CHUNK: usize = 32 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// Lines from the end; `None` or negative: all.
    pub tail_lines: Option<i64>,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One parsed line of a CRI log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub timestamp: jiff::Timestamp,
    pub stream: Stream,
    /// `P`: the line continues in the next entry.
    pub partial: bool,
    pub content: &'a [u8],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("timestamp is not found")]
    NoTimestamp,
    #[error("unexpected timestamp format {0:?}")]
    Timestamp(String),
    #[error("stream type is not found")]
    NoStream,
    #[error("unexpected stream type {0:?}")]
    StreamType(String),
    #[error("log tag is not found")]
    NoTag,
    #[error("unexpected log tag {0:?}")]
    Tag(String),
}

/// Parses one line (without its trailing newline).
pub fn parse_line(line: &[u8]) -> Result<LogLine<'_>, ParseError> {
    let (ts, rest) = split_field(line).ok_or(ParseError::NoTimestamp)?;
    let ts = String::from_utf8_lossy(ts);
    let timestamp = ts
        .parse::<jiff::Timestamp>()
        .map_err(|_| ParseError::Timestamp(ts.to_string()))?;
    let (stream, rest) = split_field(rest).ok_or(ParseError::NoStream)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        s => return Err(ParseError::StreamType(String::from_utf8_lossy(s).into())),
    };
    // Tags are `:`-separated; the first says full or partial.
    let (tags, content) = match split_field(rest) {
        Some(x) => x,
        None if !rest.is_empty() => (rest, &b""[..]),
        None => return Err(ParseError::NoTag),
    };
    let partial = match tags.split(|b| *b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(ParseError::Tag(String::from_utf8_lossy(tags).into())),
    };
    Ok(LogLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

fn split_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|b| *b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

/// Streams a container's log as `kubectl logs` shows it. With `follow`, it
/// keeps reading new data (and the new file after a rotation) until
/// `running()` turns false and the file is drained.
pub fn stream(
    path: PathBuf,
    opts: LogOptions,
    running: Arc<dyn Fn() -> bool + Send + Sync>,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let reader = Reader {
        path,
        opts,
        running,
        started: false,
        segments: VecDeque::new(),
        rotated: None,
        main: None,
        main_inode: 0,
        line: Vec::new(),
        at_line_start: true,
        remaining: None,
        draining_old: false,
        final_pass: false,
        done: false,
    };
    futures::stream::unfold(reader, |mut r| async move {
        let item = r.next_chunk().await?;
        if item.is_err() {
            r.done = true;
        }
        Some((item, r))
    })
}

struct Reader {
    path: PathBuf,
    opts: LogOptions,
    running: Arc<dyn Fn() -> bool + Send + Sync>,
    started: bool,
    /// Rotated files (and start offsets) still to read before the live one;
    /// only a tail reaching past the live file's start needs them.
    segments: VecDeque<(PathBuf, u64)>,
    /// The rotated file being read, if any.
    rotated: Option<BufReader<File>>,
    /// The live log file (opened first, so a rotation meanwhile loses nothing).
    main: Option<BufReader<File>>,
    main_inode: u64,
    /// Bytes of a line whose newline has not been read yet.
    line: Vec<u8>,
    /// Whether the next output starts a line (timestamps go there only).
    at_line_start: bool,
    remaining: Option<u64>,
    /// The live file was rotated away: read it to its end, then switch.
    draining_old: bool,
    /// The container stopped: one last read to the end, then stop.
    final_pass: bool,
    done: bool,
}

impl Reader {
    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            if let Err(e) = self.open().await {
                return Some(Err(e));
            }
        }
        let mut out = BytesMut::new();
        while !self.done && out.len() < CHUNK {
            match self.read_line().await {
                Err(e) => return Some(Err(e)),
                Ok(true) => self.emit(&mut out),
                Ok(false) if self.rotated.is_some() => {
                    // A rotated file is read to its end, then the next one.
                    self.emit(&mut out);
                    if let Err(e) = self.next_segment().await {
                        return Some(Err(e));
                    }
                }
                Ok(false) if !self.opts.follow => {
                    self.emit(&mut out);
                    self.done = true;
                }
                Ok(false) if !out.is_empty() => break,
                Ok(false) => match self.wait().await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.emit(&mut out);
                        self.done = true;
                    }
                    Err(e) => return Some(Err(e)),
                },
            }
        }
        (!out.is_empty()).then(|| Ok(out.freeze()))
    }

    /// Works out where reading starts: the last `tail` lines, reaching back
    /// into rotated files when the live one has fewer.
    async fn open(&mut self) -> io::Result<()> {
        self.remaining = self.opts.limit_bytes.map(|n| n.max(0) as u64);
        if self.remaining == Some(0) {
            self.done = true;
            return Ok(());
        }
        let mut main = File::open(&self.path).await?;
        self.main_inode = main.metadata().await?.ino();
        let tail = self.opts.tail_lines.filter(|n| *n >= 0).map(|n| n as u64);
        let mut start = 0;
        if let Some(tail) = tail {
            let found;
            (start, found) = tail_start(&mut main, tail).await?;
            let mut wanted = tail.saturating_sub(found);
            let rotated = if wanted > 0 {
                rotated_files(&self.path).await?
            } else {
                Vec::new()
            };
            for path in rotated.into_iter().rev() {
                if wanted == 0 {
                    break;
                }
                let Ok(mut f) = File::open(&path).await else {
                    continue;
                };
                let (offset, found) = tail_start(&mut f, wanted).await?;
                self.segments.push_front((path, offset));
                wanted = wanted.saturating_sub(found);
            }
        }
        main.seek(SeekFrom::Start(start)).await?;
        self.main = Some(BufReader::new(main));
        self.next_segment().await
    }

    async fn next_segment(&mut self) -> io::Result<()> {
        self.rotated = None;
        if let Some((path, offset)) = self.segments.pop_front() {
            let mut f = File::open(&path).await?;
            f.seek(SeekFrom::Start(offset)).await?;
            self.rotated = Some(BufReader::new(f));
        }
        Ok(())
    }

    /// Reads up to the next newline; false at the end of the file (a
    /// partial line then stays buffered for the next read).
    async fn read_line(&mut self) -> io::Result<bool> {
        let file = match (&mut self.rotated, &mut self.main) {
            (Some(f), _) | (None, Some(f)) => f,
            (None, None) => return Ok(false),
        };
        file.read_until(b'\n', &mut self.line).await?;
        Ok(self.line.last() == Some(&b'\n'))
    }

    /// At the end of the live file while following: true when there may be
    /// more to read, false when the container stopped and all was read.
    async fn wait(&mut self) -> io::Result<bool> {
        if let Ok(meta) = tokio::fs::metadata(&self.path).await {
            if meta.ino() != self.main_inode {
                if !self.draining_old {
                    // Rotated: read what was written to the old file since.
                    self.draining_old = true;
                    return Ok(true);
                }
                let f = File::open(&self.path).await?;
                self.main_inode = f.metadata().await?.ino();
                self.main = Some(BufReader::new(f));
                self.draining_old = false;
                return Ok(true);
            }
        }
        if !(self.running)() {
            if self.final_pass {
                return Ok(false);
            }
            self.final_pass = true;
            return Ok(true);
        }
        tokio::time::sleep(POLL).await;
        Ok(true)
    }

    /// Writes the buffered line (complete or not) to `out`, as the kubelet's
    /// log writer does: since filter, timestamp prefix, byte limit.
    fn emit(&mut self, out: &mut BytesMut) {
        if self.line.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.line);
        let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let line = match parse_line(text) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "skipping a bad log line");
                return;
            }
        };
        if self.opts.since.is_some_and(|since| line.timestamp < since) {
            return;
        }
        let start = out.len();
        if self.opts.timestamps && self.at_line_start {
            out.extend_from_slice(format_timestamp(line.timestamp).as_bytes());
            out.extend_from_slice(b" ");
        }
        out.extend_from_slice(line.content);
        if !line.partial {
            out.extend_from_slice(b"\n");
        }
        self.at_line_start = !line.partial;
        if let Some(remaining) = &mut self.remaining {
            let written = (out.len() - start) as u64;
            if written >= *remaining {
                out.truncate(start + *remaining as usize);
                *remaining = 0;
                self.done = true;
            } else {
                *remaining -= written;
            }
        }
        self.line = raw;
        self.line.clear();
    }
}

/// Go's `time.RFC3339Nano` in UTC: fraction without trailing zeros.
pub fn format_timestamp(t: jiff::Timestamp) -> String {
    let secs = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.subsec_nanosecond();
    if nanos == 0 {
        return format!("{secs}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{secs}.{}Z", frac.trim_end_matches('0'))
}

/// Where the last `n` lines of a file start, and how many lines that is
/// (fewer than `n` when the whole file has fewer). Reads backwards in blocks.
async fn tail_start(f: &mut File, n: u64) -> io::Result<(u64, u64)> {
    const BLOCK: u64 = 8 * 1024;
    let len = f.metadata().await?.len();
    if n == 0 || len == 0 {
        return Ok((len, 0));
    }
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0; BLOCK as usize];
    while pos > 0 {
        let size = BLOCK.min(pos);
        pos -= size;
        f.seek(SeekFrom::Start(pos)).await?;
        let chunk = &mut buf[..size as usize];
        f.read_exact(chunk).await?;
        for (i, b) in chunk.iter().enumerate().rev() {
            let at = pos + i as u64;
            // The newline ending the last line does not start a line.
            if *b != b'\n' || at == len - 1 {
                continue;
            }
            newlines += 1;
            if newlines == n {
                return Ok((at + 1, n));
            }
        }
    }
    Ok((0, newlines + 1))
}

/// The rotated files of a log (`0.log.20260101-120000`), oldest first;
/// compressed and temporary ones are left out.
async fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with(&prefix) && !n.ends_with(".gz") && !n.ends_with(".tmp") {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Rotates a running container's log once it reaches `max_size`, as the
/// kubelet's container log manager does: keep at most `max_files` files
/// (the live one included), rename the live file to `<path>.<timestamp>`
/// and have the runtime reopen it. Rotated files stay uncompressed so a
/// tail can read them. Returns whether it rotated.
pub async fn rotate_if_needed(
    rt: &Runtime,
    container_id: &str,
    path: &Path,
    max_size: u64,
    max_files: usize,
) -> io::Result<bool> {
    let size = match tokio::fs::metadata(path).await {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if size < max_size {
        return Ok(false);
    }
    // Besides the live file and the one rotated now, keep max_files-2.
    let keep = max_files.saturating_sub(2);
    let rotated = rotated_files(path).await?;
    let excess = rotated.len().saturating_sub(keep);
    for old in &rotated[..excess] {
        remove_if_exists(old).await?;
    }
    let target = rotation_target(path).await;
    tokio::fs::rename(path, &target).await?;
    let req = api::ReopenContainerLogRequest {
        container_id: container_id.to_string(),
    };
    if let Err(status) = rt.runtime.clone().reopen_container_log(req).await {
        // Put it back so the next round can try again.
        if let Err(e) = tokio::fs::rename(&target, path).await {
            tracing::error!(error = %e, path = %target.display(), "renaming a rotated log back failed");
        }
        return Err(io::Error::other(format!(
            "failed to reopen container log {container_id:?}: {}",
            status.message()
        )));
    }
    Ok(true)
}

/// `<path>.<YYYYMMDD-hhmmss>`, with a counter if that second was taken.
async fn rotation_target(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let base = format!("{}.{stamp}", path.display());
    let mut target = PathBuf::from(&base);
    let mut n = 1;
    while tokio::fs::try_exists(&target).await.unwrap_or(false) {
        target = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    target
}

async fn remove_if_exists(p: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(p).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn entry(sec: u32, tag: &str, content: &str) -> String {
        format!("2026-01-02T03:04:{sec:02}.500000000Z stdout {tag} {content}\n")
    }

    fn write(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn always() -> Arc<dyn Fn() -> bool + Send + Sync> {
        Arc::new(|| false)
    }

    async fn read_all(path: &Path, opts: LogOptions) -> String {
        let chunks: Vec<_> = stream(path.to_path_buf(), opts, always()).collect().await;
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    fn five_lines(dir: &Path) -> PathBuf {
        let p = dir.join("0.log");
        for i in 1..=5 {
            write(&p, &entry(i, "F", &format!("line {i}")));
        }
        p
    }

    #[test]
    fn parses_cri_lines() {
        let l = parse_line(b"2026-11-27T22:24:07.591671642Z stderr F hello world").unwrap();
        assert_eq!(l.stream, Stream::Stderr);
        assert!(!l.partial);
        assert_eq!(l.content, b"hello world");
        assert_eq!(
            format_timestamp(l.timestamp),
            "2026-11-27T22:24:07.591671642Z"
        );
        let p = parse_line(b"2026-11-27T22:24:07Z stdout P:x part").unwrap();
        assert!(p.partial);
        assert_eq!(p.content, b"part");
        assert_eq!(
            parse_line(b"2026-11-27T22:24:07Z stdout F")
                .unwrap()
                .content,
            b""
        );
        assert_eq!(
            parse_line(b"2026-11-27T22:24:07Z stdout F ")
                .unwrap()
                .content,
            b""
        );
        assert_eq!(parse_line(b"garbage"), Err(ParseError::NoTimestamp));
        assert!(matches!(
            parse_line(b"x stdout F a"),
            Err(ParseError::Timestamp(_))
        ));
        assert!(matches!(
            parse_line(b"2026-11-27T22:24:07Z stdin F a"),
            Err(ParseError::StreamType(_))
        ));
        assert!(matches!(
            parse_line(b"2026-11-27T22:24:07Z stdout X a"),
            Err(ParseError::Tag(_))
        ));
    }

    #[test]
    fn timestamps_trim_like_go() {
        let t: jiff::Timestamp = "2026-01-02T03:04:05.120Z".parse().unwrap();
        assert_eq!(format_timestamp(t), "2026-01-02T03:04:05.12Z");
        let t: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(format_timestamp(t), "2026-01-02T03:04:05Z");
    }

    #[tokio::test]
    async fn tail_since_limit_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let p = five_lines(dir.path());
        let all = read_all(&p, LogOptions::default()).await;
        assert_eq!(all, "line 1\nline 2\nline 3\nline 4\nline 5\n");
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        assert_eq!(read_all(&p, tail(2)).await, "line 4\nline 5\n");
        assert_eq!(read_all(&p, tail(0)).await, "");
        assert_eq!(read_all(&p, tail(9)).await, all);
        assert_eq!(read_all(&p, tail(-1)).await, all);
        let since = LogOptions {
            since: Some("2026-01-02T03:04:04Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(read_all(&p, since).await, "line 4\nline 5\n");
        let limit = LogOptions {
            limit_bytes: Some(10),
            ..Default::default()
        };
        assert_eq!(read_all(&p, limit).await, "line 1\nlin");
        let ts = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(read_all(&p, ts).await, "2026-01-02T03:04:05.5Z line 5\n");
    }

    #[tokio::test]
    async fn partial_lines_are_joined() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        write(&p, &entry(1, "P", "hel"));
        write(&p, &entry(2, "P", "lo "));
        write(&p, &entry(3, "F", "world"));
        write(&p, "not a cri line\n");
        write(&p, &entry(4, "F", "next"));
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            read_all(&p, opts).await,
            "2026-01-02T03:04:01.5Z hello world\n2026-01-02T03:04:04.5Z next\n"
        );
    }

    #[tokio::test]
    async fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Box::pin(stream(
            dir.path().join("nope"),
            LogOptions::default(),
            always(),
        ));
        assert!(s.next().await.unwrap().is_err());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn tail_reaches_into_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        write(
            &dir.path().join("0.log.20260101-000000"),
            &(entry(1, "F", "a") + &entry(2, "F", "b")),
        );
        write(
            &dir.path().join("0.log.20260101-000001"),
            &(entry(3, "F", "c") + &entry(4, "F", "d")),
        );
        write(&dir.path().join("0.log.20251231-000001.gz"), "zzz");
        write(
            &dir.path().join("10.log"),
            &entry(9, "F", "other container"),
        );
        write(&p, &entry(5, "F", "e"));
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        assert_eq!(read_all(&p, tail(1)).await, "e\n");
        assert_eq!(read_all(&p, tail(3)).await, "c\nd\ne\n");
        assert_eq!(read_all(&p, tail(4)).await, "b\nc\nd\ne\n");
        assert_eq!(read_all(&p, tail(100)).await, "a\nb\nc\nd\ne\n");
        // Without a tail, only the live file (as upstream).
        assert_eq!(read_all(&p, LogOptions::default()).await, "e\n");
    }

    #[tokio::test]
    async fn follow_reads_appends_and_rotation_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        write(&p, &entry(1, "F", "one"));
        let running = Arc::new(AtomicBool::new(true));
        let r = running.clone();
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut s = Box::pin(stream(
            p.clone(),
            opts,
            Arc::new(move || r.load(Ordering::SeqCst)),
        ));
        assert_eq!(next_text(&mut s).await, "one\n");
        // A line written in two parts arrives once complete.
        let half = entry(2, "F", "two");
        let (a, b) = half.split_at(20);
        write(&p, a);
        tokio::time::sleep(Duration::from_millis(250)).await;
        write(&p, b);
        assert_eq!(next_text(&mut s).await, "two\n");
        // Rotation: the last write to the old file, then a new file.
        std::fs::rename(&p, dir.path().join("0.log.20260102-000000")).unwrap();
        write(
            &dir.path().join("0.log.20260102-000000"),
            &entry(3, "F", "three"),
        );
        write(&p, &entry(4, "F", "four"));
        let mut got = String::new();
        while got.len() < "three\nfour\n".len() {
            got.push_str(&next_text(&mut s).await);
        }
        assert_eq!(got, "three\nfour\n");
        // The container stops after a last line: it is read, then the end.
        write(&p, &entry(5, "F", "five"));
        running.store(false, Ordering::SeqCst);
        assert_eq!(next_text(&mut s).await, "five\n");
        let end = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap();
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn rotation_keeps_max_files_and_undoes_a_failed_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = five_lines(dir.path());
        for i in 0..5 {
            write(&dir.path().join(format!("0.log.2026010{i}-000000")), "x");
        }
        write(&dir.path().join("0.log.20260109-000000.tmp"), "x");
        let rt = lazy_runtime();
        // Below the size: nothing happens.
        assert!(!rotate_if_needed(&rt, "c1", &p, 1 << 20, 5).await.unwrap());
        // Above it: excess removed, then the reopen fails (no runtime) and
        // the live file is put back.
        assert!(rotate_if_needed(&rt, "c1", &p, 10, 5).await.is_err());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "0.log",
                "0.log.20260102-000000",
                "0.log.20260103-000000",
                "0.log.20260104-000000",
                "0.log.20260109-000000.tmp"
            ]
        );
        assert_eq!(read_all(&p, LogOptions::default()).await.lines().count(), 5);
    }

    async fn next_text<S>(s: &mut S) -> String
    where
        S: futures::Stream<Item = io::Result<Bytes>> + Unpin,
    {
        let item = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap();
        String::from_utf8(item.unwrap().unwrap().to_vec()).unwrap()
    }

    fn lazy_runtime() -> Runtime {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        Runtime {
            runtime: api::runtime_service_client::RuntimeServiceClient::new(channel.clone()),
            images: api::image_service_client::ImageServiceClient::new(channel),
            socket: "/nonexistent".into(),
        }
    }
}

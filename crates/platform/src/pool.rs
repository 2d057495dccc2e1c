//! The container pool, with OpenWhisk's classic invoker rules: a run takes a free warm
//! container of the same namespace + action + revision; else a prewarmed stem cell of
//! the same kind and memory (replaced at once); else a cold start if all containers'
//! memory plus the action's fits the user-memory budget; else the least recently used
//! idle containers are evicted to make room; else the run waits in a FIFO queue. An idle
//! container is paused after `pauseGrace` and removed after `idleContainer`; crashes,
//! timeouts and init failures destroy it. One activation per container at a time.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use faasload_protocol::monitor::ContainerAction;
use tokio::sync::oneshot;

use super::backend::{Backend, Container};
use super::config::PoolConfig;
use super::notify::Notifier;
use super::runtime::Kind;

/// What a run needs from the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Invoking namespace.
    pub namespace: String,
    /// Action path (`ns/pkg/name`).
    pub action: String,
    pub rev: u64,
    pub kind: Kind,
    pub memory_mb: u64,
}

/// How the container of a run was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Warm,
    Prewarm,
    Cold,
}

/// A container handed out for one run; give it back with [`Pool::release`].
pub struct Lease {
    pub id: u64,
    pub start: Start,
    /// The container, except for a cold start (create it with [`Pool::create`]).
    pub container: Option<Arc<Container>>,
    /// Paused while idle: resume before running.
    pub paused: bool,
}

struct Entry {
    id: u64,
    req: Request,
    container: Option<Arc<Container>>,
    busy: bool,
    paused: bool,
    last_used: Instant,
}

struct Stem {
    container: Arc<Container>,
}

struct Waiter {
    req: Request,
    tx: oneshot::Sender<Lease>,
}

struct State {
    entries: Vec<Entry>,
    prewarm: Vec<Stem>,
    queue: VecDeque<Waiter>,
    closed: bool,
}

impl State {
    fn used(&self) -> u64 {
        self.entries.iter().map(|e| e.req.memory_mb).sum()
    }
}

/// The pool.
pub struct Pool {
    cfg: PoolConfig,
    backend: Arc<Backend>,
    notifier: Notifier,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Removals and stem-cell creations in progress, awaited by [`Pool::shutdown`] (a stem
    /// cell still being created when the pool closes is removed, not leaked).
    removing: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    me: Weak<Pool>,
}

/// Errors of container creation.
pub(crate) type CreateError = super::container::ContainerError;

impl Pool {
    /// A pool; call [`Pool::start`] to fill stem cells and run the idle sweeper.
    pub fn new(cfg: PoolConfig, backend: Arc<Backend>, notifier: Notifier) -> Arc<Pool> {
        Arc::new_cyclic(|me| Pool {
            cfg,
            backend,
            notifier,
            state: Mutex::new(State {
                entries: Vec::new(),
                prewarm: Vec::new(),
                queue: VecDeque::new(),
                closed: false,
            }),
            next_id: AtomicU64::new(0),
            removing: Mutex::new(Vec::new()),
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the stem cells and the sweeper (pause and idle removal).
    pub fn start(self: &Arc<Self>) {
        for p in &self.cfg.prewarm {
            if let Some(kind) = Kind::parse(&p.kind) {
                for _ in 0..p.count {
                    self.spawn_prewarm(kind, p.memory);
                }
            }
        }
        let me = self.me.clone();
        let tick = Duration::from_millis((self.cfg.pause_grace_ms / 4).clamp(5, 1000));
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                let Some(p) = me.upgrade() else { return };
                if !p.sweep() {
                    return;
                }
            }
        });
    }

    /// The next container name (`wsk0_<n>_<ns>_<action>`).
    fn name(&self, suffix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let clean: String = suffix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        format!("{}_{n}_{clean}", self.cfg.invoker_name)
    }

    fn spawn_prewarm(&self, kind: Kind, memory: u64) {
        let Some(me) = self.me.upgrade() else { return };
        let h = tokio::spawn(async move {
            let name = me.name(&format!("prewarm_{}", kind.short()));
            match Container::create(&me.backend, name, kind, memory).await {
                Ok(c) => {
                    me.notifier.container(ContainerAction::Run, c.monitor_id());
                    let mut g = me.lock();
                    if g.closed {
                        drop(g);
                        me.remove(c);
                        return;
                    }
                    g.prewarm.push(Stem { container: c });
                    drop(g);
                    me.drain();
                }
                Err(e) => tracing::error!("prewarm {}: {e}", kind.short()),
            }
        });
        self.track(h);
    }

    /// Takes a container for `req`, waiting in the FIFO queue if needed. None when the
    /// pool is shut down.
    pub async fn acquire(&self, req: Request) -> Option<Lease> {
        let rx = {
            let mut g = self.lock();
            if g.closed {
                return None;
            }
            if g.queue.is_empty()
                && let Some(l) = self.place(&mut g, &req)
            {
                return Some(l);
            }
            let (tx, rx) = oneshot::channel();
            g.queue.push_back(Waiter { req, tx });
            rx
        };
        rx.await.ok()
    }

    /// The placement rules; None when the run must wait.
    fn place(&self, g: &mut State, req: &Request) -> Option<Lease> {
        let now = Instant::now();
        if let Some(e) = g
            .entries
            .iter_mut()
            .filter(|e| !e.busy && e.container.is_some() && e.req == *req)
            .max_by_key(|e| e.last_used)
        {
            e.busy = true;
            let paused = std::mem::take(&mut e.paused);
            let c = e.container.clone();
            if let Some(c) = &c {
                c.lease.fetch_add(1, Ordering::SeqCst);
            }
            return Some(Lease {
                id: e.id,
                start: Start::Warm,
                container: c,
                paused,
            });
        }
        if let Some(i) = g
            .prewarm
            .iter()
            .position(|s| s.container.kind == req.kind && s.container.memory_mb == req.memory_mb)
        {
            let stem = g.prewarm.swap_remove(i);
            stem.container.lease.fetch_add(1, Ordering::SeqCst);
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            g.entries.push(Entry {
                id,
                req: req.clone(),
                container: Some(stem.container.clone()),
                busy: true,
                paused: false,
                last_used: now,
            });
            self.spawn_prewarm(req.kind, req.memory_mb);
            return Some(Lease {
                id,
                start: Start::Prewarm,
                container: Some(stem.container),
                paused: false,
            });
        }
        let budget = self.cfg.user_memory_mb;
        let used = g.used();
        if used + req.memory_mb > budget {
            // Evict least recently used idle containers if that makes enough room.
            let mut idle: Vec<(Instant, u64, u64)> = g
                .entries
                .iter()
                .filter(|e| !e.busy && e.container.is_some())
                .map(|e| (e.last_used, e.id, e.req.memory_mb))
                .collect();
            idle.sort();
            let mut freed = 0;
            let mut victims = Vec::new();
            for (_, id, m) in idle {
                if used - freed + req.memory_mb <= budget {
                    break;
                }
                freed += m;
                victims.push(id);
            }
            if used - freed + req.memory_mb > budget {
                return None;
            }
            for id in victims {
                if let Some(i) = g.entries.iter().position(|e| e.id == id) {
                    let e = g.entries.swap_remove(i);
                    if let Some(c) = e.container {
                        tracing::debug!("evicting {}", c.name);
                        self.remove(c);
                    }
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        g.entries.push(Entry {
            id,
            req: req.clone(),
            container: None,
            busy: true,
            paused: false,
            last_used: now,
        });
        Some(Lease {
            id,
            start: Start::Cold,
            container: None,
            paused: false,
        })
    }

    /// Creates the container of a cold lease.
    pub async fn create(
        &self,
        lease: &mut Lease,
        req: &Request,
    ) -> Result<Arc<Container>, CreateError> {
        let name = self.name(&format!("{}_{}", req.namespace, action_part(&req.action)));
        let c = Container::create(&self.backend, name, req.kind, req.memory_mb).await?;
        tracing::debug!("cold start: container {} for {}", c.name, req.action);
        self.notifier
            .container(ContainerAction::Run, c.monitor_id());
        c.lease.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock();
        if let Some(e) = g.entries.iter_mut().find(|e| e.id == lease.id) {
            e.container = Some(c.clone());
        }
        lease.container = Some(c.clone());
        Ok(c)
    }

    /// Gives a container back: kept warm when `keep`, else destroyed. Then serves the queue.
    pub fn release(&self, lease: Lease, keep: bool) {
        {
            let mut g = self.lock();
            if let Some(i) = g.entries.iter().position(|e| e.id == lease.id) {
                if keep && !g.closed && g.entries[i].container.is_some() {
                    let e = &mut g.entries[i];
                    e.busy = false;
                    e.last_used = Instant::now();
                } else {
                    let e = g.entries.swap_remove(i);
                    if let Some(c) = e.container {
                        self.remove(c);
                    }
                }
            } else if let Some(c) = lease.container {
                self.remove(c);
            }
        }
        self.drain();
    }

    /// Hands queued runs the containers that became possible, in order.
    fn drain(&self) {
        let mut g = self.lock();
        while let Some(w) = g.queue.front() {
            if w.tx.is_closed() {
                g.queue.pop_front();
                continue;
            }
            let req = w.req.clone();
            match self.place(&mut g, &req) {
                Some(l) => {
                    let Some(w) = g.queue.pop_front() else { break };
                    // A waiter that is gone gives the lease back.
                    if let Err(l) = w.tx.send(l)
                        && let Some(i) = g.entries.iter().position(|e| e.id == l.id)
                    {
                        if g.entries[i].container.is_some() {
                            g.entries[i].busy = false;
                        } else {
                            g.entries.swap_remove(i);
                        }
                    }
                }
                None => break,
            }
        }
    }

    /// Pauses containers idle longer than pauseGrace, removes those idle longer than
    /// idleContainer. False once the pool is closed.
    fn sweep(&self) -> bool {
        let grace = Duration::from_millis(self.cfg.pause_grace_ms);
        let idle = Duration::from_secs(self.cfg.idle_container_s);
        let now = Instant::now();
        let mut to_pause = Vec::new();
        let mut removed = false;
        {
            let mut g = self.lock();
            if g.closed {
                return false;
            }
            let mut i = 0;
            while i < g.entries.len() {
                let e = &mut g.entries[i];
                if !e.busy && e.container.is_some() && now.duration_since(e.last_used) >= idle {
                    let e = g.entries.swap_remove(i);
                    if let Some(c) = e.container {
                        self.remove(c);
                    }
                    removed = true;
                    continue;
                }
                if !e.busy
                    && !e.paused
                    && now.duration_since(e.last_used) >= grace
                    && let Some(c) = &e.container
                {
                    to_pause.push((c.clone(), c.lease.load(Ordering::SeqCst)));
                    e.paused = true;
                }
                i += 1;
            }
        }
        for (c, lease) in to_pause {
            let n = self.notifier.clone();
            tokio::spawn(async move {
                if c.pause(lease).await {
                    tracing::debug!("paused container {}", c.name);
                    n.container(ContainerAction::Pause, c.monitor_id());
                }
            });
        }
        if removed {
            self.drain();
        }
        true
    }

    /// Destroys a container in the background.
    fn remove(&self, c: Arc<Container>) {
        let n = self.notifier.clone();
        let h = tokio::spawn(async move {
            c.destroy().await;
            tracing::debug!("removed container {}", c.name);
            n.container(ContainerAction::Rm, c.monitor_id());
        });
        self.track(h);
    }

    /// Keeps a background task for [`Pool::shutdown`] to await.
    fn track(&self, h: tokio::task::JoinHandle<()>) {
        let mut r = self.removing.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|h| !h.is_finished());
        r.push(h);
    }

    /// Resumes a paused container before a run.
    pub async fn resume(&self, c: &Container) {
        if c.resume().await {
            self.notifier
                .container(ContainerAction::Resume, c.monitor_id());
        }
    }

    /// Names of the containers now in the pool: (name, busy, paused, prewarm).
    pub fn snapshot(&self) -> Vec<(String, bool, bool, bool)> {
        let g = self.lock();
        let mut v: Vec<_> = g
            .entries
            .iter()
            .filter_map(|e| {
                e.container
                    .as_ref()
                    .map(|c| (c.name.clone(), e.busy, e.paused, false))
            })
            .collect();
        v.extend(
            g.prewarm
                .iter()
                .map(|s| (s.container.name.clone(), false, false, true)),
        );
        v
    }

    /// Destroys every container and refuses new runs.
    pub async fn shutdown(&self) {
        let (cs, _queue) = {
            let mut g = self.lock();
            g.closed = true;
            let mut cs: Vec<Arc<Container>> =
                g.entries.drain(..).filter_map(|e| e.container).collect();
            cs.extend(g.prewarm.drain(..).map(|s| s.container));
            (cs, std::mem::take(&mut g.queue))
        };
        for c in cs {
            c.destroy().await;
            self.notifier.container(ContainerAction::Rm, c.monitor_id());
        }
        // A stem cell finishing its creation now sees `closed` and queues its removal:
        // await until no task is left.
        loop {
            let pending =
                std::mem::take(&mut *self.removing.lock().unwrap_or_else(|e| e.into_inner()));
            if pending.is_empty() {
                break;
            }
            for h in pending {
                let _ = h.await;
            }
        }
    }
}

fn action_part(path: &str) -> String {
    // `ns/pkg/name` -> `pkg_name`; `ns/name` -> `name`.
    let mut it = path.splitn(2, '/');
    let _ = it.next();
    it.next().unwrap_or(path).replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::action_part;

    #[test]
    fn names() {
        assert_eq!(action_part("guest/pkg/hello"), "pkg_hello");
        assert_eq!(action_part("guest/hello"), "hello");
    }
}

//! Two supervised subsystems exchanging typed messages: `ping` sends
//! `Ping(n)` to `pong`, which answers `Pong(n)` through a
//! `Recipient<Pong>` (it knows the message type, not the actor type).
//! After the configured number of round trips, `ping` asks the daemon to
//! stop, and the daemon stops both in reverse order.
//!
//! ```text
//! cargo run --example ping_pong             # 5 round trips
//! cargo run --example ping_pong -- 100000   # a longer rally
//! ```

use std::time::Instant;

use proc_daemon::prelude::*;

/// The ball going out.
struct Ping {
    n: u64,
    reply_to: Recipient<Pong>,
}

/// The ball coming back.
struct Pong(u64);

/// Answers every `Ping` with a `Pong`.
struct Ponger {
    returned: u64,
}

impl Actor for Ponger {
    async fn stopped(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        println!(
            "pong: stopped after returning {} balls ({reason})",
            self.returned
        );
    }
}

impl Handler<Ping> for Ponger {
    type Reply = ();
    async fn handle(&mut self, Ping { n, reply_to }: Ping, _ctx: &mut Context<Self>) {
        self.returned += 1;
        // A pinger that is gone cannot get its ball back; that is fine.
        let _ = reply_to.tell(Pong(n)).await;
    }
}

/// Serves, counts the returns, and stops the daemon after `rally` of them.
struct Pinger {
    pong: ActorRef<Ponger>,
    rally: u64,
    started: Option<Instant>,
    shutdown: ShutdownHandle,
}

impl Actor for Pinger {
    async fn started(&mut self, ctx: &mut Context<Self>) -> std::result::Result<(), BoxError> {
        self.started = Some(Instant::now());
        let me = ctx.actor_ref().clone().recipient::<Pong>();
        self.pong.tell(Ping { n: 1, reply_to: me }).await?;
        Ok(())
    }
}

impl Handler<Pong> for Pinger {
    type Reply = ();
    async fn handle(&mut self, Pong(n): Pong, ctx: &mut Context<Self>) {
        if n <= 5 || n == self.rally {
            println!("ping: got the ball back, round trip {n}");
        }
        if n >= self.rally {
            let took = self.started.map(|s| s.elapsed()).unwrap_or_default();
            println!(
                "ping: {n} round trips in {took:?} ({:?} each); asking the daemon to stop",
                took / u32::try_from(n).unwrap_or(u32::MAX)
            );
            self.shutdown.request_shutdown("the rally is over");
            return;
        }
        let me = ctx.actor_ref().clone().recipient::<Pong>();
        let _ = self
            .pong
            .tell(Ping {
                n: n + 1,
                reply_to: me,
            })
            .await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let rally: u64 = match std::env::args().nth(1) {
        None => 5,
        Some(arg) => arg.parse().map_err(|err| {
            Error::subsystem(
                "ping_pong",
                format!("the rally length {arg:?} is not a number: {err}"),
            )
        })?,
    };
    if rally == 0 {
        return Err(Error::subsystem(
            "ping_pong",
            "the rally needs at least one round trip",
        ));
    }
    let daemon = Daemon::builder(Config::new()?).build()?;
    let pong = daemon
        .supervisor()
        .child("pong", || Ponger { returned: 0 })
        .mailbox(daemon.mailbox_options())
        .spawn()
        .await?;
    let shutdown = daemon.shutdown_handle();
    daemon
        .supervisor()
        .child("ping", move || Pinger {
            pong: pong.clone(),
            rally,
            started: None,
            shutdown: shutdown.clone(),
        })
        .mailbox(daemon.mailbox_options())
        .spawn()
        .await?;
    let exit = daemon.run().await?;
    println!("daemon: {} (exit code {})", exit.reason(), exit.exit_code());
    Ok(())
}

//! `berth-sim`: Bitbucket Cloud, Bitbucket Data Center and GitHub simulators with demo data,
//! until Ctrl-C. Prints the base URLs, a Berth config snippet and the (fake) demo credentials.

use berth_testkit::sim::{demo, SimClock, SimPorts};
use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-sim", about = "Simulated Bitbucket Cloud, Bitbucket Data Center and GitHub on 127.0.0.1")]
struct Args {
    /// Port for Bitbucket Cloud (0: any free port).
    #[arg(long, default_value_t = 0)]
    port_cloud: u16,
    /// Port for Bitbucket Data Center (0: any free port).
    #[arg(long, default_value_t = 0)]
    port_dc: u16,
    /// Port for GitHub (0: any free port).
    #[arg(long, default_value_t = 0)]
    port_github: u16,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (builder, creds) = demo::builder(SimClock::system());
    let sim = builder.start_on(SimPorts { cloud: args.port_cloud, dc: args.port_dc, github: args.port_github }).await;
    println!("{}", demo::banner(&sim, &creds));
    println!("Running; Ctrl-C stops.");
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    sim.shutdown().await;
}

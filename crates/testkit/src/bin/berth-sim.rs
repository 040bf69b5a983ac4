//! `berth-sim`: Bitbucket Cloud, Bitbucket Data Center and GitHub simulators with demo data,
//! until Ctrl-C. Prints the base URLs, a Berth config snippet (also written to a file with
//! `--write-config FILE`) and the (fake) demo credentials.

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
    /// Also write the printed `berth.toml` to this file (replaced if it exists), for
    /// `BERTH_CONFIG=FILE berth serve`.
    #[arg(long, value_name = "FILE")]
    write_config: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (builder, creds) = demo::builder(SimClock::system());
    let sim = builder.start_on(SimPorts { cloud: args.port_cloud, dc: args.port_dc, github: args.port_github }).await;
    println!("{}", demo::banner(&sim, &creds));
    if let Some(path) = &args.write_config {
        // Written once the ports are known, so the file names the hosts that are listening.
        if let Err(e) = std::fs::write(path, demo::berth_toml(&sim)) {
            eprintln!("berth-sim: cannot write {}: {e}", path.display());
            sim.shutdown().await;
            std::process::exit(2);
        }
        println!("Wrote the berth.toml above to {}.", path.display());
    }
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

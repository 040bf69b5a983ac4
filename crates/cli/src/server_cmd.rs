// TEMPORARY stub so the CLI compiles; the lead replaces this file.
pub async fn serve() -> anyhow::Result<()> {
    anyhow::bail!("not wired")
}

pub async fn admin(_cmd: crate::AdminCmd) -> anyhow::Result<()> {
    anyhow::bail!("not wired")
}

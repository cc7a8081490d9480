use super::{ConfigArgs, load_settings};

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.flags())?;
    crate::config::master_key(&settings)?;
    for d in &settings.subscriptions {
        if let Some(var) = &d.secret_env
            && settings.env.var(var).is_none()
        {
            anyhow::bail!("declared subscription `{}`: the environment variable `{var}` is not set", d.name);
        }
    }
    let sinks: Vec<&str> = settings.sink_settings().kinds().iter().map(|k| k.as_str()).collect();
    println!(
        "configuration is valid: listen {}, data_dir {}, {} declared subscription(s), alert sinks: {}",
        settings.listen,
        settings.data_dir.display(),
        settings.subscriptions.len(),
        if sinks.is_empty() { "none (incidents show in the dashboard only)".to_owned() } else { sinks.join(", ") }
    );
    Ok(())
}

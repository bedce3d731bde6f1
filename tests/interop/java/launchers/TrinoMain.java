/*
 * Starts a real Trino server from the trino-main jar on the classpath.
 *
 * Trino ships its entry point in a separate server-main module that is not published
 * to Maven Central for the releases the suite runs, so the suite resolves trino-main
 * with its dependencies and starts it through this one-line main, run by the JDK's
 * source launcher (`java -cp ... TrinoMain.java VERSION`). The argument is the version
 * the server reports (in /v1/info and system.runtime.nodes).
 */
public final class TrinoMain
{
    private TrinoMain() {}

    public static void main(String[] args)
    {
        new io.trino.server.Server().start(args.length > 0 ? args[0] : "unknown");
    }
}

// Starts DynamoDB Local bound to 127.0.0.1 only.
//
// DynamoDB Local has no flag to choose its bind address (its Jetty listens on every
// interface), so this launcher builds the server from the usual command line, sets the
// host of each Jetty connector to loopback, then starts it. Run as a single-file source
// program: java -cp "DIR/DynamoDBLocal.jar:DIR/DynamoDBLocal_lib/*" LoopbackDynamoDB.java ARGS
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDB {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector) {
                ((ServerConnector) connector).setHost("127.0.0.1");
            }
        }
        proxy.start();
        proxy.join();
    }
}

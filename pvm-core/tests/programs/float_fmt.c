/* Floating-point formatting and parsing through the libc (printf/strtod) and a little libm:
 * exercises SSE state across syscalls (printf writes in between). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    volatile double zero = 0.0;
    double values[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1.0 / 3.0, 2.0 / 3.0, 3.141592653589793,
                       2.718281828459045, 1e-300, 1e300, 123456789.123456789, DBL_MAX, DBL_MIN,
                       5e-324, 1e21, 1e22, 0.5, 1234.5, -9876.54321};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        double v = values[i];
        printf("%zu: %f | %.17g | %e | %g | %a | %10.3f|%-12.4e|\n", i, v, v, v, v, v, v, v);
    }
    printf("inf=%f -inf=%f nan=%f\n", 1.0 / zero, -1.0 / zero, zero / zero);
    printf("float: %.9g %.9g\n", (double)1.1f, (double)(float)(1.0 / 3.0));
    long double ld = 1.0L / 3.0L;
    printf("long double: %.21Lg %La\n", ld, ld);

    const char *inputs[] = {"0.1", "1e-5", "123.456e7", "-0", "0x1.8p3", "inf", "2.2250738585072014e-308",
                            "9007199254740993", "1.7976931348623157e308"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        double d = strtod(inputs[i], NULL);
        printf("strtod(%s) = %.17g\n", inputs[i], d);
    }

    /* Accumulate in a loop so the compiler keeps SSE registers live across calls. */
    double acc = 0.0, harmonic = 0.0;
    for (int i = 1; i <= 1000000; i++) {
        acc += sqrt((double)i);
        harmonic += 1.0 / i;
        if (i % 250000 == 0)
            printf("i=%d acc=%.10f harmonic=%.15f\n", i, acc, harmonic);
    }
    printf("libm: sin(1)=%.15f cos(1)=%.15f exp(1)=%.15f log(10)=%.15f pow(2,0.5)=%.15f\n", sin(1.0),
           cos(1.0), exp(1.0), log(10.0), pow(2.0, 0.5));
    printf("rounding: %.0f %.0f %.0f %.0f %.1f %.2f\n", 0.5, 1.5, 2.5, -0.5, 0.05, 1.005);
    return 0;
}
